"""TorchIO integration: SpineAug in tio.Compose (metadata, types, errors); slow: SubjectsDataset + Queue training."""

from __future__ import annotations

import math

import pytest
import torch

tio = pytest.importorskip("torchio")

from spineaug.integrations.torchio import SpineAug  # noqa: E402


def _subject(label: bool = True) -> tio.Subject:
    g = torch.Generator().manual_seed(0)
    affine = torch.diag(torch.tensor([2.0, 2.0, 3.0, 1.0])).numpy()
    images = {"image": tio.ScalarImage(tensor=torch.randn(1, 24, 24, 24, generator=g), affine=affine)}
    if label:
        images["label"] = tio.LabelMap(tensor=torch.randint(0, 4, (1, 24, 24, 24), generator=g), affine=affine)
    return tio.Subject(**images, age=40)


def test_in_compose_keeps_types_and_metadata_and_follows_torch_seed():
    subject = _subject()
    before = subject["image"].data.clone()
    transform = tio.Compose([tio.ZNormalization(), SpineAug(preset="xdomain", patch_size=(16, 16, 16))])
    torch.manual_seed(1)
    a = transform(subject)
    torch.manual_seed(1)
    b = transform(subject)
    assert isinstance(a["image"], tio.ScalarImage) and isinstance(a["label"], tio.LabelMap)
    assert a["image"].shape == a["label"].shape == (1, 16, 16, 16)
    assert (a["image"].affine == a["label"].affine).all() and a["age"] == 40
    assert a["label"].data.dtype == subject["label"].data.dtype
    assert set(a["label"].data.unique().tolist()) <= {0, 1, 2, 3}
    assert torch.equal(a["image"].data, b["image"].data)
    assert torch.equal(subject["image"].data, before)
    assert [h.name for h in a.history][-1] == "SpineAug"


def test_bad_subjects_are_clear():
    with pytest.raises(ValueError, match="no LabelMap"):
        SpineAug(preset="xdomain")(_subject(label=False))  # xdomain's label-guided transforms need one
    out = SpineAug(preset="nnunet")(_subject(label=False))
    assert out["image"].shape == (1, 24, 24, 24)
    with pytest.raises(KeyError, match="image_key 't1'"):
        SpineAug(preset="nnunet", image_key="t1")(_subject())
    two = _subject()
    two.add_image(tio.ScalarImage(tensor=torch.zeros(1, 24, 24, 24)), "t2")
    with pytest.raises(ValueError, match="pass image_key="):
        SpineAug(preset="nnunet")(two)
    with pytest.raises(ValueError, match="either preset= or config="):
        SpineAug(preset="nnunet", config={"transforms": []})


def test_affine_follows_the_crop_and_flips():
    """The output voxel (i, j, k) lies where the affine says: each voxel of a coordinate image names its source."""
    shape = (20, 22, 24)
    coords = torch.stack(torch.meshgrid(*[torch.arange(s, dtype=torch.float32) for s in shape], indexing="ij"))
    affine = torch.tensor([[0.0, 0, -2, 50], [1.5, 0, 0, -20], [0, 3, 0, 7], [0, 0, 0, 1]]).numpy().astype("float64")
    subject = tio.Subject(image=tio.ScalarImage(tensor=coords, affine=affine),
                          label=tio.LabelMap(tensor=torch.zeros(1, *shape, dtype=torch.long), affine=affine))
    config = {"transforms": [{"name": "Spatial", "patch_size": [10, 12, 8], "p_rotation": 0, "p_scale": 0},
                             {"name": "Flip", "p": 0.5, "axes": [0, 1, 2]}]}  # fmt: skip
    transform = SpineAug(config=config)
    for seed in range(4):
        torch.manual_seed(seed)
        out = transform(subject)
        new = torch.from_numpy(out["image"].affine)
        assert (out["label"].affine == out["image"].affine).all()
        grid = torch.stack(torch.meshgrid(*[torch.arange(s, dtype=torch.float64) for s in (10, 12, 8)],
                                          indexing="ij")).reshape(3, -1)  # fmt: skip
        world = new[:3, :3] @ grid + new[:3, 3:]
        source = torch.linalg.solve(torch.from_numpy(affine)[:3, :3], world - torch.from_numpy(affine)[:3, 3:])
        assert torch.allclose(source, out["image"].data.reshape(3, -1).double(), atol=1e-4)
    assert (subject["image"].affine == affine).all()  # the input subject is not changed


def test_include_and_exclude_are_honoured():
    subject = _subject()
    with pytest.raises(ValueError, match=r"also holds \['label'\] \(left out by include/exclude\)"):
        SpineAug(preset="nnunet", include=["image"])(subject)  # the label would not follow the crop
    with pytest.raises(ValueError, match=r"left out by include/exclude"):
        SpineAug(preset="nnunet", exclude=["label"])(subject)
    gamma = {"transforms": [{"name": "Gamma", "p": 1.0}]}
    out = SpineAug(config=gamma, include=["image"])(subject)  # intensity only: the label is left alone
    assert torch.equal(out["label"].data, subject["label"].data)
    assert not torch.equal(out["image"].data, subject["image"].data)
    two = _subject()
    two.add_image(tio.ScalarImage(tensor=torch.randn(1, 24, 24, 24)), "t2")
    out = SpineAug(config=gamma, include=["t2"])(two)  # include picks the image among several
    assert torch.equal(out["image"].data, two["image"].data) and not torch.equal(out["t2"].data, two["t2"].data)
    with pytest.raises(KeyError, match=r"with include=\['t2'\]"):
        SpineAug(config=gamma, include=["t2"], image_key="image")(two)


@pytest.mark.slow
def test_subjects_dataset_and_queue_train(tmp_path):
    """A few training iterations on phantom NIfTI files: tio.SubjectsDataset + tio.Queue, spineaug in the workers."""
    from spineaug import phantom

    root = phantom.write_datasets(tmp_path, "t2w", 2, spacing=4.0, shape=(32, 40, 64), progress=False)["t2w"]
    subjects = [
        tio.Subject(image=tio.ScalarImage(p), label=tio.LabelMap(root / "labelsTr" / p.name.replace("_0000.nii", ".nii")))
        for p in sorted((root / "imagesTr").glob("*_0000.nii.gz"))
    ]
    transform = tio.Compose([tio.ZNormalization(), SpineAug(preset="xdomain")])
    dataset = tio.SubjectsDataset(subjects, transform=transform)
    queue = tio.Queue(dataset, max_length=8, samples_per_volume=2, sampler=tio.UniformSampler(24), num_workers=1)
    loader = tio.SubjectsLoader(queue, batch_size=2, num_workers=0)
    net = torch.nn.Sequential(torch.nn.Conv3d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv3d(8, 4, 1))
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    losses = []
    for _ in range(2):
        for batch in loader:
            image, label = batch["image"][tio.DATA], batch["label"][tio.DATA]
            assert image.shape == (2, 1, 24, 24, 24) and not label.is_floating_point()
            loss = torch.nn.functional.cross_entropy(net(image), label[:, 0].long())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    assert len(losses) == 4 and all(math.isfinite(v) for v in losses)


GAMMA = {"transforms": [{"name": "Gamma", "p": 1.0}]}
LABEL_GUIDED = {"transforms": [{"name": "LabelIntensityRemap", "p": 1.0}]}  # intensity only, needs the label


def _coordinates(shape):
    return torch.stack(torch.meshgrid(*[torch.arange(s, dtype=torch.float32) for s in shape], indexing="ij"))


def test_affine_follows_a_crop_centred_on_the_foreground():
    """The crop's place depends on the label: the new affine must be computed with it."""
    shape = (20, 20, 20)
    label = torch.zeros(1, *shape, dtype=torch.long)
    label[0, 15:18, 2:5, 14:17] = 1  # a blob far from the centre
    affine = torch.diag(torch.tensor([2.0, 1.5, 3.0, 1.0])).double().numpy()
    subject = tio.Subject(image=tio.ScalarImage(tensor=_coordinates(shape), affine=affine),
                          label=tio.LabelMap(tensor=label, affine=affine))
    config = {"transforms": [{"name": "Spatial", "patch_size": [6, 6, 6], "p_rotation": 0, "p_scale": 0,
                              "p_foreground": 1.0}]}  # fmt: skip
    torch.manual_seed(0)
    out = SpineAug(config=config)(subject)
    assert out["label"].data.sum() > 0  # the crop holds the blob, far from the centre crop
    first = out["image"].data[:, 0, 0, 0].double()  # the input voxel the output corner came from
    corner = torch.from_numpy(out["image"].affine)[:3, 3]
    assert torch.allclose(corner, torch.from_numpy(affine)[:3, :3] @ first)


def test_the_seed_of_each_call_is_one_draw_of_torch_global_generator():
    import copy

    subject = _subject()
    aug = SpineAug(preset="xdomain")
    torch.manual_seed(5)
    out = aug.apply_transform(copy.deepcopy(subject))  # what tio.Transform.__call__ runs on its copy
    torch.manual_seed(5)
    seed = int(torch.randint(0, 2**62, (1,)))
    want, want_label = aug.pipeline(subject["image"].data[None], subject["label"].data[None].long(),
                                    generator=torch.Generator().manual_seed(seed))
    assert torch.equal(out["image"].data, want[0]) and torch.equal(out["label"].data, want_label[0])


def test_patch_size_applies_to_a_config_and_the_default_is_xdomain():
    spatial = {"transforms": [{"name": "Spatial", "p_rotation": 0, "p_scale": 0}]}
    out = SpineAug(config=spatial, patch_size=(8, 10, 12))(_subject())
    assert out["image"].shape == out["label"].shape == (1, 8, 10, 12)
    import spineaug

    assert SpineAug().pipeline.config() == spineaug.Pipeline.from_preset("xdomain").config()


def test_a_config_seed_warning_points_at_the_caller():
    from spineaug.validation import NoEffectWarning

    from spineaug.integrations import torchio as adapter

    with pytest.warns(NoEffectWarning) as record:
        SpineAug(config={"seed": 3, **GAMMA})
    assert record[0].filename != adapter.__file__  # the caller's line, not the adapter's


def test_image_and_label_keys_pick_among_several():
    two = _subject()
    two.add_image(tio.ScalarImage(tensor=torch.randn(1, 24, 24, 24)), "t2")
    out = SpineAug(config=GAMMA, image_key="t2")(two)
    assert torch.equal(out["image"].data, two["image"].data) and not torch.equal(out["t2"].data, two["t2"].data)
    labels = _subject()
    labels.add_image(tio.LabelMap(tensor=torch.zeros(1, 24, 24, 24, dtype=torch.long)), "empty")
    with pytest.raises(ValueError, match=r"^SpineAug: the subject has 2 label maps \['label', 'empty'\]; pass "
                                         r"label_key=$"):
        SpineAug(config=LABEL_GUIDED)(labels)
    # The chosen label map guides the transform: an empty one and the real one give different images.
    torch.manual_seed(0)
    with_real = SpineAug(config=LABEL_GUIDED, label_key="label")(labels)["image"].data
    torch.manual_seed(0)
    with_empty = SpineAug(config=LABEL_GUIDED, label_key="empty")(labels)["image"].data
    assert not torch.equal(with_real, with_empty)
    with pytest.raises(KeyError) as exc:
        SpineAug(config=GAMMA, label_key="seg")(_subject())
    assert exc.value.args[0] == "SpineAug: label_key 'seg' is not a LabelMap of the subject (label maps: ['label'])"
    with pytest.raises(KeyError) as exc:
        SpineAug(config=GAMMA, image_key="t1", exclude=["label"])(_subject())
    assert exc.value.args[0] == ("SpineAug: image_key 't1' is not a ScalarImage of the subject (scalar images: "
                                 "['image'], with exclude=['label'])")


def test_a_geometric_pipeline_refuses_other_images_naming_them():
    two = _subject()
    two.add_image(tio.ScalarImage(tensor=torch.randn(1, 24, 24, 24)), "t2")
    with pytest.raises(ValueError) as exc:
        SpineAug(preset="nnunet", image_key="image")(two)
    assert str(exc.value).startswith("SpineAug: the subject also holds ['t2']; the pipeline moves 'image' and "
                                     "'label' geometrically")
    one = _subject(label=False)
    one.add_image(tio.ScalarImage(tensor=torch.randn(1, 24, 24, 24)), "t2")
    with pytest.raises(ValueError) as exc:
        SpineAug(preset="nnunet", image_key="image")(one)
    assert str(exc.value).startswith("SpineAug: the subject also holds ['t2']; the pipeline moves 'image' "
                                     "geometrically")


def test_image_and_label_types_are_kept_and_labels_checked():
    g = torch.Generator().manual_seed(0)
    image = torch.randint(-1000, 1000, (1, 16, 16, 16), generator=g, dtype=torch.int16)  # CT in HU, as stored
    label = torch.randint(0, 3, (1, 16, 16, 16), generator=g, dtype=torch.uint8)
    out = SpineAug(preset="nnunet")(tio.Subject(image=tio.ScalarImage(tensor=image), label=tio.LabelMap(tensor=label)))
    assert out["image"].data.dtype == torch.float32 and out["label"].data.dtype == torch.uint8
    double = tio.Subject(image=tio.ScalarImage(tensor=image.double()))
    assert SpineAug(config=GAMMA)(double)["image"].data.dtype == torch.float64
    as_float = tio.Subject(image=tio.ScalarImage(tensor=image.float()), label=tio.LabelMap(tensor=label.float()))
    out = SpineAug(preset="nnunet")(as_float)  # a float label map of whole numbers is a label map
    assert out["label"].data.dtype == torch.float32 and torch.equal(out["label"].data, out["label"].data.round())
    half = label.float()
    half[0, 0, 0, 0] = 0.5
    with pytest.raises(ValueError, match=r"^SpineAug: LabelMap 'label' holds non-integer values$"):
        SpineAug(preset="nnunet")(tio.Subject(image=tio.ScalarImage(tensor=image.float()),
                                              label=tio.LabelMap(tensor=half)))
    small = tio.Subject(image=tio.ScalarImage(tensor=image.float()), label=tio.LabelMap(tensor=label[:, :8]))
    with pytest.raises(ValueError, match=r"^SpineAug: LabelMap 'label' has shape \(8, 16, 16\) but 'image' has "
                                         r"\(16, 16, 16\)$"):
        SpineAug(config=GAMMA)(small)
