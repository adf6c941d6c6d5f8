"""Adapters to other frameworks; each imports its framework lazily (install the matching extra).

``nnunet`` (nnU-Net v2 trainers), ``monai`` (a MONAI dictionary transform), ``torchio`` (a TorchIO transform),
``auglab`` (reads the reference toolbox's JSON configs into spineaug configs).
"""

from spineaug.integrations._extras import require

__all__ = ["require"]
