"""Public phantom API for multi-domain rendering: make_cases, DOMAINS, VERSION."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from spineaug import phantom

SMALL = dict(shape=(32, 40, 64), spacing=(4.0, 4.0, 4.0))

# sha256 of the label and tissue maps of make_case(3, "ct", **SMALL), per phantom.VERSION: when the anatomy changes,
# bump phantom.VERSION (caches key on it) and add its checksum here.
ANATOMY_SHA256 = {"1": "32b9cb3aa7b46fb6e8cd684dd0d9a706f3649362f54d21f9c9cadb4750b01a2c"}


def test_make_cases_pairs_one_anatomy_and_equals_make_case():
    domains = ["ct", "t1w", "t2w"]
    cases = phantom.make_cases(3, domains, **SMALL)
    assert list(cases) == domains
    first = cases["ct"]
    for name, case in cases.items():
        assert case.domain == name and case.seed == 3
        np.testing.assert_array_equal(case.label, first.label)
        np.testing.assert_array_equal(case.tissue, first.tissue)
        np.testing.assert_array_equal(case.affine, first.affine)
        assert case.spacing == first.spacing
        if name != "ct":
            assert not np.allclose(case.image, first.image)
        single = phantom.make_case(3, name, **SMALL)
        np.testing.assert_array_equal(case.image, single.image)
        np.testing.assert_array_equal(case.label, single.label)
        np.testing.assert_array_equal(case.tissue, single.tissue)
        np.testing.assert_array_equal(case.affine, single.affine)
        assert case.info == single.info
    assert cases["ct"].label is not cases["t2w"].label  # each case owns its arrays


def test_make_cases_builds_the_anatomy_once(monkeypatch):
    calls = []
    original = phantom.anatomy.generate

    def counting(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(phantom, "generate", counting)
    phantom.make_cases(1, "ct,t2w,pd", **SMALL)
    assert len(calls) == 1


def test_make_cases_domains_default_and_bad_input():
    assert isinstance(phantom.DOMAINS["ct"], phantom.Domain)
    names = tuple(phantom.DOMAINS)
    assert {"ct", "t1w", "t2w"} <= set(names)
    with pytest.raises(ValueError, match="unknown domain"):
        phantom.make_cases(0, ["ct", "mri"], **SMALL)
    with pytest.raises(ValueError, match="repeat"):
        phantom.make_cases(0, ["ct", "ct"], **SMALL)
    with pytest.raises(ValueError, match="seed"):
        phantom.make_cases(-1, ["ct"], **SMALL)


def test_make_cases_default_is_every_domain():
    cases = phantom.make_cases(2, **SMALL)
    assert tuple(cases) == tuple(phantom.DOMAINS)


def test_version_is_pinned_to_the_anatomy():
    assert isinstance(phantom.VERSION, str) and phantom.VERSION
    case = phantom.make_case(3, "ct", **SMALL)
    digest = hashlib.sha256(case.label.tobytes() + case.tissue.tobytes()).hexdigest()
    assert ANATOMY_SHA256.get(phantom.VERSION) == digest, (
        "the phantom's anatomy changed: bump phantom.VERSION and record the new checksum here"
    )
