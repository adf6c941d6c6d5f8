"""Import an optional framework, or fail with a message naming the extra that installs it."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module``; raise ``ImportError`` naming the extra that installs it when it is missing.

    spineaug is not published on PyPI: the message says how to install the extra from the checkout
    (``pip install -e '.[extra]'`` in the repository root).
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{purpose} needs {module.split('.')[0]}, which is not installed ({exc}); "
            f"install the '{extra}' extra from the spineaug checkout (spineaug is not on PyPI): "
            f"pip install -e '.[{extra}]' in the repository root"
        ) from exc
