"""nnU-Net trainers: a config's anatomical axes (Flip of axis 0 = left-right) found in nnU-Net's training arrays.

Checked with nnU-Net's own readers on anisotropic, non-RAS NIfTI files: flipping the training array along the mapped
axis equals flipping the anatomy left-right (and so for the other two axes), for every orientation tried.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from spineaug.integrations.nnunet.axes import array_axes, dataset_array_axes, remap_config

nib = pytest.importorskip("nibabel")


def _nnunet_transpose(spacing) -> list[int]:
    """nnU-Net's plans rule (ExperimentPlanner.determine_transpose): the coarsest axis first, the others in order."""
    first = int(np.argmax(spacing))
    return [first] + [i for i in range(3) if i != first]


def _training_array(path, reader):
    """What nnU-Net trains on: the reader's array, transposed by the plans' transpose_forward; and the properties."""
    data, properties = reader.read_images([str(path)])
    forward = _nnunet_transpose(properties["spacing"])
    return data[0].transpose(forward), properties, forward


@pytest.mark.parametrize("codes", [("I", "P", "L"), ("A", "S", "L"), ("R", "A", "S"), ("L", "P", "S"), ("S", "R", "P")])
@pytest.mark.parametrize("reader_name", ["SimpleITKIO", "NibabelIO", "NibabelIOWithReorient"])
def test_mapped_axes_flip_the_anatomy(tmp_path, codes, reader_name):
    pytest.importorskip("nnunetv2")
    from nibabel.orientations import axcodes2ornt, io_orientation, ornt_transform
    from nnunetv2.imageio import nibabel_reader_writer, simpleitk_reader_writer

    reader = getattr(simpleitk_reader_writer, reader_name, None) or getattr(nibabel_reader_writer, reader_name)
    if reader_name == "SimpleITKIO":
        pytest.importorskip("SimpleITK")
    rng = np.random.default_rng(0)
    ras = rng.normal(size=(6, 7, 8)).astype(np.float32)  # X (L->R), Y (P->A), Z (I->S)
    spacing = (2.0, 2.0, 5.0)  # thick slices along inferior-superior: anisotropic
    affine = np.diag([*spacing, 1.0])
    arrays = {}
    for name, volume in [("plain", ras), *((f"flip{a}", np.flip(ras, a).copy()) for a in range(3))]:
        image = nib.Nifti1Image(volume, affine)
        image = image.as_reoriented(ornt_transform(io_orientation(affine), axcodes2ornt(codes)))
        nib.save(image, str(tmp_path / f"{name}.nii.gz"))
        arrays[name], properties, forward = _training_array(tmp_path / f"{name}.nii.gz", reader())
    mapping = array_axes(properties, forward)
    assert mapping is not None and sorted(mapping) == [0, 1, 2]
    for anatomical in range(3):
        assert np.allclose(np.flip(arrays["plain"], mapping[anatomical]), arrays[f"flip{anatomical}"]), anatomical
    if codes == ("I", "P", "L") and reader_name == "SimpleITKIO":
        assert forward == [2, 0, 1] and mapping == (1, 2, 0)  # worked by hand in the module docstring's terms


def test_axial_ras_phantom_flips_left_right_on_array_axis_2():
    """What `spineaug phantom` writes (RAS, isotropic): SimpleITK reads (z, y, x), so left-right is axis 2."""
    properties = {"sitk_stuff": {"direction": (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)}}
    assert array_axes(properties, [0, 1, 2]) == (2, 1, 0)
    assert array_axes({}, [0, 1, 2]) is None
    oblique = {"sitk_stuff": {"direction": (0.7, 0.7, 0.0, 0.7, 0.7, 0.0, 0.0, 0.0, 1.0)}}
    assert array_axes(oblique, [0, 1, 2]) is None


def test_remap_config_moves_axis_parameters_only():
    import spineaug

    config = spineaug.Pipeline.from_preset("xdomain").config()
    config["transforms"][0]["rotation_deg"] = [[-10.0, 10.0], [-20.0, 20.0], [-30.0, 30.0]]
    config["transforms"][0]["patch_size"] = [16, 32, 48]
    out = remap_config(config, (2, 1, 0))
    flip = next(e for e in out["transforms"] if e["name"] == "Flip")
    assert flip["axes"] == [2]  # left-right
    assert out["transforms"][0]["rotation_deg"] == [[-30.0, 30.0], [-20.0, 20.0], [-10.0, 10.0]]
    assert out["transforms"][0]["patch_size"] == [16, 32, 48]  # nnU-Net's patch: already array axes
    assert next(e for e in config["transforms"] if e["name"] == "Flip")["axes"] == [0]  # input unchanged
    spineaug.Pipeline.from_config(out)  # still a valid config


def test_dataset_mapping_reads_every_case_and_notes_disagreement(tmp_path):
    axial = {"sitk_stuff": {"direction": (-1.0, 0, 0, 0, -1.0, 0, 0, 0, 1.0)}}
    sagittal = {"sitk_stuff": {"direction": (0, 0, -1.0, -1.0, 0, 0, 0, 1.0, 0)}}
    for i, props in enumerate([axial, axial, sagittal]):
        (tmp_path / f"case{i}.pkl").write_bytes(pickle.dumps(props))
    mapping, note = dataset_array_axes(tmp_path, [0, 1, 2])
    assert mapping == (2, 1, 0) and "left-right -> array axis 2" in note and "1 of 3 cases" in note
    assert dataset_array_axes(tmp_path / "none", [0, 1, 2])[0] is None
