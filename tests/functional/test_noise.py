"""spineaug.functional.noise: counter-based noise fields, one seed per sample."""

from __future__ import annotations

import torch


def test_noise_fields_do_not_depend_on_the_batch():
    """The same per-sample seeds give the same noise whatever batch the sample is in, on any split of the batch."""
    from spineaug.functional import noise as FN

    seeds = torch.tensor([3, 2**61 + 5, 17, 4])
    field = FN.normal_field(seeds, (2, 5, 6, 7))
    assert field.shape == (4, 2, 5, 6, 7) and field.dtype == torch.float32
    torch.testing.assert_close(FN.normal_field(seeds[2:3], (2, 5, 6, 7))[0], field[2], atol=0, rtol=0)
    torch.testing.assert_close(FN.normal_field(seeds.flip(0), (2, 5, 6, 7)).flip(0), field, atol=0, rtol=0)
    assert not torch.equal(field[0], field[3])
    big = FN.normal_field(torch.tensor([11, 12]), (64, 64, 64))
    assert abs(float(big.mean())) < 0.01 and abs(float(big.std()) - 1) < 0.01
    lag = (big[..., 1:] * big[..., :-1]).mean()
    assert abs(float(lag)) < 0.01, "neighbouring voxels are uncorrelated"
    assert abs(float((big[0] * big[1]).mean())) < 0.01, "samples are uncorrelated"
