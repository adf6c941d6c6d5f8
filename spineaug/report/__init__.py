"""Reports: markdown tables and PNG figures generated from the CSV files under ``results/``.

Each module reads one kind of results and writes its part of ``reports/``; ``benchmark`` covers ``spineaug bench``.
"""
