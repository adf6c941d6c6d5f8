"""Import an optional framework, or fail with a message naming the extra that installs it."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module``; raise ``ImportError`` naming ``pip install 'spineaug[extra]'`` when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{purpose} needs {module.split('.')[0]}, which is not installed ({exc}); "
            f"install it with: pip install 'spineaug[{extra}]'"
        ) from exc
