"""Fidelity of the presets named after a reference, measured: ``nnunet`` vs nnU-Net v2, ``xdomain`` vs AugLab.

:mod:`~spineaug.fidelity.nnunet` compares ``nnunet`` with batchgeneratorsv2, :mod:`~spineaug.fidelity.auglab`
compares ``xdomain`` with AugLab at the paper's commit (in its own environment), and :func:`run` (``spineaug
fidelity --out DIR``) writes both to result files (``spineaug._schema`` names their columns) that
:mod:`spineaug.report.fidelity` renders. Needs ``batchgeneratorsv2`` and ``nnunetv2``.
"""

from __future__ import annotations

from spineaug.fidelity.runner import run

__all__ = ["run"]
