"""Gradients flow through every transform: a differentiable image input can be augmented and back-propagated.

The engine writes into its own intermediates (``out=``, in-place ops) to save passes; while autograd records, those
writes are replaced by fresh tensors (``spineaug.functional.intensity.tracked``). These tests pin that for the whole
registry, forced on with the parameters the presets use, and check the recorded forward equals the plain one.
"""

from __future__ import annotations

import pytest
import torch

from spineaug.bench.cases import forced_pipeline, transform_entries

ENTRIES = transform_entries(["xdomain", "nnunet"])


@pytest.mark.parametrize("entry", [e for e, _ in ENTRIES], ids=[e["name"] for e, _ in ENTRIES])
def test_backward_through_every_transform(entry):
    torch.manual_seed(0)
    image = torch.randn(2, 1, 12, 14, 16)
    label = torch.randint(0, 4, (2, 1, 12, 14, 16))
    aug = forced_pipeline([entry], 0, torch.device("cpu"))
    plain, _ = aug(image, label, generator=torch.Generator().manual_seed(3))
    leaf = image.clone().requires_grad_(True)
    out, out_label = aug(leaf, label, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(out.detach(), plain, rtol=1e-5, atol=1e-5)
    assert out.requires_grad  # a transform that only moves voxels by index still carries the graph
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    assert leaf.grad is not None and torch.isfinite(leaf.grad).all()
    assert not image.requires_grad and out_label.dtype == label.dtype
