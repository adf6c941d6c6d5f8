"""Per-sample independence, over the whole registry: a sample's output depends on its own data and parameters only.

Applying a transform to a batch gives, for each sample, the same output as applying it to that sample alone with
the same drawn parameters: not which other samples fire, nor the batch size, nor the sample's position changes it.
"""

from __future__ import annotations

import pytest
import torch

import spineaug
from spineaug.batch import Batch
from tests._exercise import EXERCISE
from tests.conftest import make_batch

NAMES = sorted(spineaug.TRANSFORMS)
# Spatial also crops (to a patch smaller than the volume), so each sample's own crop placement is covered too
CROP = {"patch_size": [8, 9, 10]}


@pytest.mark.parametrize("name", NAMES)
def test_each_sample_comes_out_as_if_it_were_alone(name):
    image, label = make_batch(b=5, shape=(12, 13, 14), seed=1)
    entry = {"name": name, "p": 0.6, **EXERCISE[name], **(CROP if name == "Spatial" else {})}
    t = spineaug.build_transform(entry)
    batch = Batch(image, label)
    for seed in range(3):
        params = t.sample_params(batch, torch.Generator().manual_seed(seed))
        together = t.apply(batch, params)
        for i in range(batch.size):
            rows = torch.tensor([i])
            alone = t.apply(Batch(image[i : i + 1], label[i : i + 1]), params.select(rows))
            torch.testing.assert_close(alone.image[0], together.image[i], atol=2e-5, rtol=2e-5, msg=f"sample {i}")
            assert torch.equal(alone.label[0], together.label[i]), f"sample {i}"
        assert torch.equal(image, make_batch(b=5, shape=(12, 13, 14), seed=1)[0])  # inputs untouched


