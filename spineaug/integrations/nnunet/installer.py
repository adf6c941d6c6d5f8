"""Make nnU-Net find spineaug's trainers: one small module in nnunetv2's ``training/nnUNetTrainer`` package.

nnU-Net looks a trainer up by walking the modules of its own ``training/nnUNetTrainer`` package (or the folders in
``nnUNet_extTrainer``); :func:`install` adds ``spineaug_trainers.py`` there, which imports our trainers.
"""

from __future__ import annotations

import os
from pathlib import Path

from spineaug.integrations._extras import require

MODULE = "spineaug_trainers.py"
MARKER = "# written by `spineaug nnunet-install`; remove with `spineaug nnunet-install --uninstall`"
CONTENT = f'''"""spineaug's nnU-Net trainers (nnUNetTrainerSpineAug, ...), so that nnUNetv2_train -tr finds them."""

{MARKER}
try:
    from spineaug.integrations.nnunet.trainers import *  # noqa: F401,F403
except ImportError as exc:  # spineaug is gone: keep nnU-Net's own trainers usable
    import warnings

    warnings.warn(f"spineaug trainers unavailable: {{exc}}", stacklevel=1)
'''


def trainer_folder() -> Path:
    """nnunetv2's ``training/nnUNetTrainer`` package folder (the one nnU-Net searches for trainers)."""
    nnunetv2 = require("nnunetv2", "nnunet", "spineaug nnunet-install")
    return Path(nnunetv2.__path__[0]) / "training" / "nnUNetTrainer"


def install(folder: str | Path | None = None) -> tuple[Path, bool]:
    """Write the module (``folder``: default nnunetv2's trainer package); return its path and whether it was written.

    Idempotent; never touches any other file. Raises ``PermissionError`` when the folder is not writable and
    ``FileExistsError`` when a file of that name exists that this function did not write.
    """
    folder = trainer_folder() if folder is None else Path(folder)
    path = folder / MODULE
    if path.exists():
        text = path.read_text()
        if text == CONTENT:
            return path, False
        if MARKER not in text:
            raise FileExistsError(f"{path} exists and was not written by spineaug nnunet-install; not touching it")
    if not folder.is_dir():
        raise FileNotFoundError(f"nnU-Net trainer folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"cannot write to {folder} (not writable); install as a user who can, or put a "
                              "module importing spineaug.integrations.nnunet.trainers into a folder listed in "
                              "the nnUNet_extTrainer environment variable")  # fmt: skip
    path.write_text(CONTENT)
    return path, True


def uninstall(folder: str | Path | None = None) -> Path | None:
    """Remove exactly the module :func:`install` wrote; return its path, or ``None`` when it was not there."""
    folder = trainer_folder() if folder is None else Path(folder)
    path = folder / MODULE
    if not path.exists():
        return None
    if MARKER not in path.read_text():
        raise FileExistsError(f"{path} was not written by spineaug nnunet-install; not removing it")
    path.unlink()
    return path
