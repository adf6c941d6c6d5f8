"""The transform gallery (``spineaug preview``): forced-on entries, phantom and NIfTI inputs, PNG output."""

from __future__ import annotations

import numpy as np
import pytest

from spineaug import cli
from spineaug.preview import gallery

ENTRIES = [
    {"name": "GaussianBlur", "p": 0.2, "sigma": [0.5, 1.0]},
    {"name": "LabelIntensityRemap", "p": 0.4, "p_inside": 0.25},
    {"name": "FovCrop", "p": 0.25},
    {"name": "Spatial", "p_rotation": 0.2, "p_scale": 0.0, "patch_size": [8, 8, 8]},
]


def _png_ok(path) -> None:
    import matplotlib.image

    data = matplotlib.image.imread(path)
    assert data.ndim == 3 and data.shape[0] > 100 and data.shape[1] > 100
    assert data[..., :3].std() > 0.05  # not blank


def test_force_on_raises_effect_probabilities_only():
    forced = gallery.force_on(
        {"name": "Spatial", "p_rotation": 0.2, "p_scale": 0.0, "p_foreground": 0.3, "patch_size": [8, 8, 8]}
    )
    assert forced == {"name": "Spatial", "p": 1.0, "p_rotation": 1.0, "p_scale": 0.0, "p_foreground": 0.3}
    forced = gallery.force_on({"name": "ScharrEdge", "p": 0.25, "mix_prob": 0.5})
    assert forced["p"] == 1.0 and forced["mix_prob"] == 0.0


def test_render_gallery_from_a_small_phantom(tmp_path):
    volume = gallery.phantom_volume(0, "ct", shape=(24, 32, 48))
    out = gallery.render_gallery(volume, ENTRIES, tmp_path / "sub" / "g.png", title="test")
    _png_ok(out)


def test_cli_preview_with_nifti_files(tmp_path):
    nib = pytest.importorskip("nibabel")
    rng = np.random.default_rng(0)
    image = rng.normal(size=(16, 20, 24)).astype(np.float32)
    label = np.zeros((16, 20, 24), dtype=np.uint8)
    label[4:12, 5:15, 6:18] = 1
    label[6:10, 8:12, 9:15] = 2
    affine = np.diag([2.0, 2.0, 3.0, 1.0])
    nib.save(nib.Nifti1Image(image, affine), tmp_path / "img.nii.gz")
    nib.save(nib.Nifti1Image(label, affine), tmp_path / "lbl.nii.gz")
    config = tmp_path / "cfg.json"
    import json

    config.write_text(json.dumps({"transforms": ENTRIES}))
    out = tmp_path / "g.png"
    rc = cli.main(
        [
            "preview",
            "--config",
            str(config),
            "--image",
            str(tmp_path / "img.nii.gz"),
            "--label",
            str(tmp_path / "lbl.nii.gz"),
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    _png_ok(out)
    # Without a label, label-guided panels say so instead of failing.
    out2 = tmp_path / "g2.png"
    assert (
        cli.main(
            ["preview", "--config", str(config), "--image", str(tmp_path / "img.nii.gz"), "--out", str(out2)]
        )
        == 0
    )
    assert out2.is_file()


def test_cli_preview_errors_are_clear(tmp_path, capsys):
    assert cli.main(["preview", "--label", "x.nii.gz", "--out", str(tmp_path / "g.png")]) == 2
    assert "--label needs --image" in capsys.readouterr().err
    assert (
        cli.main(["preview", "--image", str(tmp_path / "missing.nii.gz"), "--out", str(tmp_path / "g.png")])
        == 2
    )
    assert "not found" in capsys.readouterr().err
    assert cli.main(["preview", "--preset", "nope", "--out", str(tmp_path / "g.png")]) == 2


def test_training_patches_read_the_enlarged_patch_that_fits_the_case():
    import spineaug
    from spineaug.data import enlarged_patch_size

    entries = [{"name": "Spatial", "rotation_deg": [-30, 30], "scale": [0.7, 1.4]}, {"name": "Gamma"}]
    patch, read = gallery.training_patches((64, 80, 96), [spineaug.Pipeline.from_config({"transforms": entries})])
    assert read == enlarged_patch_size(patch, [-30, 30], (0.7, 1.4))
    assert all(r <= s for r, s in zip(read, (64, 80, 96))) and read != patch
    assert all(0.3 * s <= p for p, s in zip(patch, (64, 80, 96)))  # the largest that fits, not a token patch
    gamma = spineaug.Pipeline.from_config({"transforms": [{"name": "Gamma"}]})
    assert gallery.training_patches((64, 80, 96), [gamma]) == ((64, 80, 96), (64, 80, 96))
    forced = gallery.force_on({"name": "Spatial", "p_foreground": 0.3, "patch_size": [8, 8, 8]})
    assert "patch_size" not in forced and forced["p_rotation"] == forced["p_scale"] == 1.0


def test_spatial_panel_pads_less_with_the_enlarged_read():
    """The point of the enlarged read: a forced rotation/zoom-out of the final patch shows anatomy, not padding."""
    import torch

    import spineaug

    volume = gallery.phantom_volume(0, "ct", shape=(48, 64, 80))
    entry = {"name": "Spatial", "rotation_deg": [-30, 30], "scale": [0.7, 1.4], "pad_value": -1000.0}
    forced = spineaug.Pipeline.from_config({"seed": 3, "transforms": [gallery.force_on(entry)]})
    patch, read = gallery.training_patches(volume.image.shape, [forced])
    image = torch.from_numpy(volume.image)[None, None]

    def padded(size, pipe):
        out, _ = pipe(gallery.center_crop(image, size))
        return float((out == -1000.0).float().mean())

    training = forced.for_patch(patch)
    assert training.read_size == read
    assert padded(read, training.pipeline) < 0.01 < padded(patch, forced)


@pytest.mark.parametrize("preset", ["synthseg", "slaug"])
def test_domain_generalisation_presets_render_a_panel_per_entry(preset, tmp_path):
    title, entries = gallery.preset_entries(preset)
    assert title == f"preset {preset}" and len(entries) >= 3
    volume = gallery.phantom_volume(0, "t2w", shape=(24, 32, 48))
    _png_ok(gallery.render_gallery(volume, entries, tmp_path / f"{preset}.png", title=title))


def test_random_draws_of_whole_presets_on_one_patch(tmp_path):
    volume = gallery.phantom_volume(0, "t2w", shape=(24, 32, 48))
    out = gallery.render_draws(volume, ["nnunet", "xdomain"], tmp_path / "draws.png", draws=3, seed=1,
                               patch=(16, 16, 16))
    _png_ok(out)
    with pytest.raises(ValueError, match="larger than the case"):
        gallery.render_draws(volume, ["nnunet"], tmp_path / "x.png", patch=(32, 32, 32))


def test_cli_phantom_figure_writes_the_png_and_the_domains(tmp_path, monkeypatch):
    import json

    from spineaug import phantom
    from spineaug.preview import phantom as phantom_figure

    original = phantom_figure.render
    monkeypatch.setattr(phantom_figure, "render", lambda out, seed=0: original(out, seed=seed, shape=(24, 32, 48)))
    assert cli.main(["preview", "--phantom", "--out", str(tmp_path / "phantom.png")]) == 0
    _png_ok(tmp_path / "phantom.png")
    meta = json.loads((tmp_path / "phantom.json").read_text())
    assert [d["name"] for d in meta["domains"]] == list(phantom.DOMAINS)
    assert all(d["description"] == phantom.DOMAINS[d["name"]].description for d in meta["domains"])
    assert meta["figure"] == "phantom.png" and meta["shape"] == [24, 32, 48] and "git" in meta

