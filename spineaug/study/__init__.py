"""Cross-domain study: train one model per source domain x augmentation arm x seed, Dice on every domain.

Example:
    >>> from spineaug import study                                          # doctest: +SKIP
    >>> cfg = study.load_study("studies/quick.yaml")                        # doctest: +SKIP
    >>> study.run_study(cfg, "results/study/quick")                         # doctest: +SKIP
"""

from spineaug.study.config import StudyConfig, load_study
from spineaug.study.runner import SlurmOptions, cells, run_cell, run_study, status

__all__ = [
    "SlurmOptions",
    "StudyConfig",
    "cells",
    "export",
    "load_study",
    "run_cell",
    "run_study",
    "status",
    "summarize",
]


def summarize(*args, **kwargs):
    """See :func:`spineaug.study.summary.summarize` (imported on use: it needs pandas, the ``study`` extra)."""
    from spineaug.study.summary import summarize as _summarize  # optional: pandas (study extra)

    return _summarize(*args, **kwargs)


def export(*args, **kwargs):
    """See :func:`spineaug.study.summary.export`."""
    from spineaug.study.summary import export as _export  # optional: pandas (study extra)

    return _export(*args, **kwargs)
