"""spineaug.functional.synthesis: per-label histograms and quantiles, intensity clusters (LabelSynthesis, SLAug)."""

from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st

from spineaug.functional import synthesis as FS
from tests.conftest import make_batch


def test_label_quantiles_match_torch_quantile_within_a_bin():
    image, label = make_batch(b=3, shape=(16, 17, 18), seed=2)
    u = (image - image.amin(dim=(2, 3, 4), keepdim=True)) / (
        image.amax(dim=(2, 3, 4), keepdim=True) - image.amin(dim=(2, 3, 4), keepdim=True))
    hist, _ = FS.label_histogram(u, label, 4)
    for q in (0.2, 0.5, 0.8):
        got = FS.label_quantile(hist, q)
        for b in range(3):
            for lab in range(4):
                ref = torch.quantile(u[b, 0][label[b, 0] == lab], q)
                assert abs(float(got[b, 0, lab]) - float(ref)) <= 1.5 / FS.BINS, (b, lab, q)


def test_intensity_clusters_are_quantile_bins_of_each_label():
    image, label = make_batch(b=2, shape=(20, 21, 22), seed=3)
    k = torch.tensor([[3, 1, 2, 4], [2, 3, 1, 1]])
    sub = FS.intensity_clusters(image, label, 4, k)
    assert sub.shape == image.shape and sub.dtype == torch.long
    for b in range(2):
        for lab in range(4):
            inside = label[b, 0] == lab
            x, s = image[b, 0][inside], sub[b, 0][inside]
            kk = int(k[b, lab])
            assert int(s.min()) >= 0 and int(s.max()) == kk - 1
            order = x.argsort()
            assert bool((s[order].diff() >= 0).all()), "darker voxels never get a higher sub-label"
            share = torch.bincount(s, minlength=kk).float() / s.numel()
            assert bool(((share - 1 / kk).abs() < 0.05).all()), share  # about equal groups (256-bin histogram)


@given(seed=st.integers(0, 2**31 - 1), d=st.integers(1, 8), h=st.integers(1, 8), w=st.integers(1, 8),
       k=st.integers(1, 5))
def test_clusters_stay_in_range_and_follow_intensity_order(seed, d, h, w, k):
    g = torch.Generator().manual_seed(seed)
    image = torch.randn(2, 1, d, h, w, generator=g)
    label = torch.randint(0, 3, (2, 1, d, h, w), generator=g)
    clusters = torch.randint(1, k + 1, (2, 3), generator=g)
    sub = FS.intensity_clusters(image, label, 3, clusters)
    limit = clusters.gather(1, label.flatten(1)).view_as(label)
    assert bool((sub >= 0).all() and (sub < limit).all())
    for b in range(2):
        for lab in range(3):
            inside = label[b, 0] == lab
            x, s = image[b, 0][inside], sub[b, 0][inside]
            if x.numel() > 1:
                assert bool((s[x.argsort()].diff() >= 0).all())
