"""nnU-Net v2 integration: trainers that augment on the device with spineaug (see :mod:`.trainers`).

The trainers import nnunetv2 when first used (``from spineaug.integrations.nnunet import nnUNetTrainerSpineAug``);
:func:`install`/:func:`uninstall` (the ``spineaug nnunet-install`` command) make ``nnUNetv2_train -tr`` find them.
"""

from __future__ import annotations

from typing import Any

from spineaug.integrations.nnunet.installer import install, uninstall


def __getattr__(name: str) -> Any:
    if name.startswith("nnUNetTrainer"):
        from spineaug.integrations.nnunet import trainers  # optional: nnunetv2 (nnunet extra)

        return getattr(trainers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["install", "uninstall"]
