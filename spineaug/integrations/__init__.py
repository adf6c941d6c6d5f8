"""Adapters between spineaug and other tools (AugLab's config files today; nnU-Net, MONAI, TorchIO later).

Each adapter imports its third-party dependency inside functions, so ``import spineaug`` never needs it.
"""
