"""The validated types of :mod:`spineaug.validation` that the layers above the engine share."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from spineaug.validation import ConfigError, RequiredSeed, Seed, check_seed, validation_message


class _Seeds(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: Seed = None
    data_seed: RequiredSeed = 0


@pytest.mark.parametrize("value", [None, 0, 7, -(2**63), 2**64 - 1, np.int64(3)])
def test_a_seed_field_accepts_what_check_seed_accepts(value):
    assert _Seeds(seed=value).seed == check_seed(value)
    if value is not None:
        kept = _Seeds(data_seed=value).data_seed
        assert kept == check_seed(value) and type(kept) is int


@pytest.mark.parametrize("value", [True, 1.0, "1", 2**64, -(2**63) - 1, [1]])
def test_a_seed_field_refuses_what_check_seed_refuses(value):
    """The rule runs on the raw value: pydantic's lax mode would otherwise turn True into 1 and 2.0 into 2."""
    with pytest.raises(ConfigError):
        check_seed(value)
    for key in ("seed", "data_seed"):
        with pytest.raises(ValidationError) as info:
            _Seeds(**{key: value})
        assert f"'{key}' must be an integer" in validation_message("Seeds", info.value)


def test_a_required_seed_refuses_none():
    with pytest.raises(ValidationError) as info:
        _Seeds(data_seed=None)
    assert validation_message("Seeds", info.value) == "Seeds: data_seed: 'data_seed' must be an integer, got None"


def test_validation_message_names_each_key():
    with pytest.raises(ValidationError) as info:
        _Seeds(seed=1.5, other=2)
    assert validation_message("Seeds", info.value).splitlines() == [
        "Seeds: seed: 'seed' must be an integer or null, got 1.5",
        "Seeds: other: Extra inputs are not permitted (got 2)",
    ]
