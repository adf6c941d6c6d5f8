"""Row subsets of a batch (``spineaug.batch.take_rows`` / ``put_rows``): views and slice copies for consecutive rows,
index ops otherwise, the same values on both paths."""

from __future__ import annotations

import pytest
import torch

from spineaug.batch import put_rows, take_rows


@pytest.mark.parametrize("rows", [[1], [1, 2], [0, 2], [0, 1, 3]])
def test_take_and_put_rows_match_index_ops(rows):
    x = torch.randn(4, 2, 3, 3, 3)
    idx = torch.tensor(rows)
    taken = take_rows(x, idx)
    assert torch.equal(taken, x.index_select(0, idx))
    consecutive = bool((idx.diff() == 1).all())
    assert (taken.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()) == consecutive  # a view iff a run
    values = torch.randn(len(rows), 2, 3, 3, 3)
    out = put_rows(x.clone(), idx, values)
    assert torch.equal(out, x.index_copy(0, idx, values))


def test_put_rows_rejects_mismatched_values_on_both_paths():
    x = torch.zeros(3, 1, 2, 2, 2)
    for rows in (torch.tensor([0, 1]), torch.tensor([0, 2])):
        with pytest.raises(ValueError, match="put_rows: 2 rows of"):
            put_rows(x, rows, torch.zeros(1, 1, 2, 2, 2))  # the slice copy would broadcast this silently
        with pytest.raises(ValueError, match="float64"):
            put_rows(x, rows, torch.zeros(2, 1, 2, 2, 2, dtype=torch.float64))
