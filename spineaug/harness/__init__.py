"""The training harness that the study and the benchmark share (the benchmark never imports the study).

:mod:`spineaug.harness.augment` builds an augmentation arm (a spineaug preset/config on the batch, or nnU-Net's own
pipeline in loader workers) for a final training patch; :mod:`spineaug.harness.train` trains with it (network, loss,
optimiser, step, loader, where the arm augments, the phantom -> sample path).
"""
