"""The presets' contents, pinned entry by entry to their references.

``nnunet`` is pinned to nnU-Net v2's default training augmentation (``nnUNetTrainer.get_training_transforms``,
nnunetv2 2.x / batchgeneratorsv2), ``xdomain`` to the paper's AugLab GPU configuration (its JSON is compared with
the AugLab snapshot itself in ``tests/test_xdomain_fidelity.py`` when the snapshot is present; the values are
repeated here so a change is caught without it), ``xdomain-plus`` to ``xdomain`` plus its documented changes.
Every key of every entry is pinned, defaults included (a changed default changes what a preset does): a halved
probability or a widened range fails here, naming the entry and the key.
"""

from __future__ import annotations

from typing import Any

import pytest

import spineaug

NNUNET: list[dict[str, Any]] = [
    # SpatialTransform: rotation_for_DA 3-D = +-30 deg (configure_rotation_dummyDA_mirroring_and_inital_patch_size),
    # p_rotation 0.2, scaling (0.7, 1.4) with p_scaling 0.2, p_synchronize_scaling_across_axes 1, no elastic
    # deformation (p_elastic_deform 0), image padded with 0, labels with background (nnU-Net: -1, then mapped to 0).
    {'name': 'Spatial', 'patch_size': None, 'p_rotation': 0.2, 'rotation_deg': [-30.0, 30.0], 'p_scale': 0.2,
     'scale': [0.7, 1.4], 'per_axis_scale': False, 'p_elastic': 0.0, 'elastic_magnitude': [0.0, 4.0],
     'elastic_spacing': 16, 'p_foreground': 0.0, 'crop': 'random', 'pad_mode': 'constant', 'pad_value': 0.0,
     'label_pad': 0, 'label_interpolation': 'nearest', 'p': 1.0},
    # GaussianNoiseTransform(noise_variance=(0, 0.1), p_per_channel=1, synchronize_channels=True), p 0.1
    {'name': 'GaussianNoise', 'sigma': [0.0, 0.1], 'mean': 0.0, 'rician': False, 'region': None, 'p': 0.1},
    # GaussianBlurTransform(blur_sigma=(0.5, 1.0), synchronize_axes=False, p_per_channel=0.5), p 0.2 -> 0.1
    {'name': 'GaussianBlur', 'sigma': [0.5, 1.0], 'per_axis': True, 'truncate': 3.0, 'retain_stats': False,
     'mix_prob': 0.0, 'region': None, 'p': 0.1},
    # MultiplicativeBrightnessTransform(BGContrast((0.75, 1.25)), synchronize_channels=False), p 0.15
    {'name': 'Brightness', 'multiplier': [0.75, 1.25], 'sampler': 'bgcontrast', 'per_channel': True,
     'region': None, 'p': 0.15},
    # ContrastTransform(BGContrast((0.75, 1.25)), preserve_range=True, synchronize_channels=False), p 0.15
    {'name': 'Contrast', 'contrast': [0.75, 1.25], 'sampler': 'bgcontrast', 'preserve_range': True,
     'per_channel': True, 'region': None, 'p': 0.15},
    # SimulateLowResolutionTransform(scale=(0.5, 1), synchronize_axes=True, nearest-exact down, linear up,
    # p_per_channel=0.5), p 0.25 -> 0.125
    {'name': 'LowResolution', 'scale': [0.5, 1.0], 'per_axis': False, 'axes': [0, 1, 2], 'down': 'nearest',
     'up': 'linear', 'retain_stats': False, 'mix_prob': 0.0, 'region': None, 'p': 0.125},
    # GammaTransform(BGContrast((0.7, 1.5)), p_invert_image=1, retain_stats=True), p 0.1
    {'name': 'InverseGamma', 'gamma': [0.7, 1.5], 'sampler': 'bgcontrast', 'retain_stats': True,
     'mix_prob': 0.0, 'region': None, 'p': 0.1},
    # GammaTransform(BGContrast((0.7, 1.5)), p_invert_image=0, retain_stats=True), p 0.3
    {'name': 'Gamma', 'gamma': [0.7, 1.5], 'sampler': 'bgcontrast', 'invert': False, 'retain_stats': True,
     'mix_prob': 0.0, 'region': None, 'p': 0.3},
    # MirrorTransform(allowed_axes=(0, 1, 2)): each axis flipped with probability 0.5
    {'name': 'Flip', 'axes': [0, 1, 2], 'p': 0.5},
]  # fmt: skip

XDOMAIN: list[dict[str, Any]] = [
    {'name': 'Spatial', 'patch_size': None, 'p_rotation': 0.2, 'rotation_deg': [-30.0, 30.0], 'p_scale': 0.2,
     'scale': [0.7, 1.4], 'per_axis_scale': False, 'p_elastic': 0.0, 'elastic_magnitude': [0.0, 4.0],
     'elastic_spacing': 16, 'p_foreground': 0.0, 'crop': 'random', 'pad_mode': 'constant', 'pad_value': 0.0,
     'label_pad': 0, 'label_interpolation': 'nearest', 'p': 1.0},
    {'name': 'Flip', 'axes': [0], 'p': 0.5},
    {'name': 'Inversion', 'retain_stats': True, 'mix_prob': 0.0, 'region': None, 'p': 0.25},
    {'name': 'HistogramEqualization', 'bins': 256, 'interpolate': False, 'retain_stats': True,
     'mix_prob': 0.6, 'region': None, 'p': 0.25},
    {'name': 'LabelIntensityRemap', 'p_inside': 0.25, 'regions': 'union', 'width': [0.0, 0.2],
     'amplitude': [-1.0, 1.0], 'ring_radius': 3, 'max_label': 3, 'ignore_label': None, 'retain_stats': True,
     'mix_prob': 0.0, 'region': None, 'p': 0.4},
    {'name': 'ScharrEdge', 'magnitude': 'l1', 'normalize': False, 'retain_stats': True, 'mix_prob': 0.5,
     'region': None, 'p': 0.25},
    {'name': 'UnsharpMask', 'sigma': [0.0, 1.0], 'amount': [0.0, 1.5], 'per_axis': True, 'truncate': 3.0,
     'retain_stats': False, 'mix_prob': 0.5, 'region': None, 'p': 0.25},
    {'name': 'RandomConv', 'kernel_sizes': [3, 5, 7], 'preserve_dc': False, 'retain_stats': True,
     'mix_prob': 0.5, 'region': None, 'p': 0.2},
    {'name': 'GaussianNoise', 'sigma': [0.0, 1.0], 'mean': 0.0, 'rician': False, 'region': None, 'p': 0.1},
    {'name': 'GaussianBlur', 'sigma': [0.0, 1.0], 'per_axis': True, 'truncate': 3.0, 'retain_stats': False,
     'mix_prob': 0.0, 'region': None, 'p': 0.2},
    {'name': 'Brightness', 'multiplier': [0.75, 1.25], 'sampler': 'uniform', 'per_channel': False,
     'region': None, 'p': 0.15},
    {'name': 'Gamma', 'gamma': [0.7, 1.5], 'sampler': 'uniform', 'invert': False, 'retain_stats': True,
     'mix_prob': 0.0, 'region': None, 'p': 0.3},
    {'name': 'InverseGamma', 'gamma': [0.7, 1.5], 'sampler': 'uniform', 'retain_stats': True, 'mix_prob': 0.0,
     'region': None, 'p': 0.1},
    {'name': 'Contrast', 'contrast': [0.75, 1.25], 'sampler': 'uniform', 'preserve_range': False,
     'per_channel': False, 'region': None, 'p': 0.15},
    {'name': 'IntensityFunction', 'functions': ['log1p'], 'retain_stats': True, 'region': None, 'p': 0.1},
    {'name': 'IntensityFunction', 'functions': ['sqrt'], 'retain_stats': True, 'region': None, 'p': 0.1},
    {'name': 'IntensityFunction', 'functions': ['sin'], 'retain_stats': True, 'region': None, 'p': 0.1},
    {'name': 'IntensityFunction', 'functions': ['exp'], 'retain_stats': True, 'region': None, 'p': 0.1},
    {'name': 'IntensityFunction', 'functions': ['sigmoid'], 'retain_stats': True, 'region': None, 'p': 0.1},
    {'name': 'LowResolution', 'scale': [0.5, 1.0], 'per_axis': True, 'axes': [0, 1, 2], 'down': 'linear',
     'up': 'linear', 'retain_stats': False, 'mix_prob': 0.0, 'region': None, 'p': 0.25},
    {'name': 'ThickSlice', 'scale': [0.1, 1.0], 'axes': [0, 1, 2], 'profile': 'linear', 'up': 'linear',
     'retain_stats': False, 'mix_prob': 0.0, 'region': None, 'p': 0.2},
    {'name': 'FovCrop', 'crop': [0.5, 1.0], 'pos': [0.0, 1.0], 'axes': [0, 1, 2], 'fill': 'value',
     'fill_value': 0.0, 'label_fill': 0, 'p': 0.25},
    {'name': 'BiasField', 'coefficients': 0.2, 'order': 3, 'invert': False, 'signed': True,
     'retain_stats': True, 'region': None, 'p': 0.15},]  # fmt: skip

XDOMAIN_PLUS_CHANGES: dict[tuple[str, str], Any] = {
    ("Spatial", "pad_mode"): "min",
    ("LabelIntensityRemap", "regions"): "per_label",
    ("ScharrEdge", "normalize"): True,
    ("LowResolution", "down"): "gaussian",
    ("ThickSlice", "profile"): "box",
    ("FovCrop", "fill"): "min",
    ("BiasField", "signed"): False,
}
XDOMAIN_PLUS_LABEL_APPEARANCE = {
    'name': 'LabelAppearance', 'mean': [0.0, 1.0], 'std': [0.0, 0.1], 'texture': [0.0, 0.5],
    'blur_sigma': [0.0, 1.0], 'p_bias': 0.5, 'bias_std': 0.3, 'max_label': 3, 'retain_stats': True,
    'mix_prob': 0.0, 'region': None, 'p': 0.15,
}  # fmt: skip


def _xdomain_plus() -> list[dict[str, Any]]:
    out = []
    for entry in XDOMAIN:
        entry = {k: XDOMAIN_PLUS_CHANGES.get((entry["name"], k), v) for k, v in entry.items()}
        out.append(entry)
        if entry["name"] == "LabelIntensityRemap":
            out.append(XDOMAIN_PLUS_LABEL_APPEARANCE)
    return out


# Domain-generalisation presets: xdomain's Spatial + Flip front (so a comparison isolates the appearance part), then
# the method's published defaults (each value's source is in the preset's description).
SYNTHSEG_APPEARANCE: list[dict[str, Any]] = [
    # SynthSeg (Billot et al. 2023) GMM: means U(25, 225), stds U(5, 25) (the authors' code), always on; 1-3 intensity sub-labels per label
    {'name': 'LabelSynthesis', 'mean': [25.0, 225.0], 'std': [5.0, 25.0], 'clusters': [1, 3], 'max_label': 3,
     'retain_stats': True, 'mix_prob': 0.0, 'region': None, 'p': 1.0},
    # smooth exp bias field, log-field spread ~0.3 (the paper's RMS sigma_B for sigma_B ~ U(0, 0.5))
    {'name': 'BiasField', 'coefficients': 0.3, 'order': 3, 'invert': False, 'signed': False, 'retain_stats': True,
     'region': None, 'p': 1.0},
    # gamma exp(N(0, 0.4^2)) on the normalised image: below / above 1 with equal probability within +-2 sigma
    {'name': 'Gamma', 'gamma': [0.449, 2.226], 'sampler': 'bgcontrast', 'invert': False, 'retain_stats': True,
     'mix_prob': 0.0, 'region': None, 'p': 1.0},
    # anisotropic resolution r ~ U(1, 8) in one random axis (their code's max_res_aniso), Gaussian PSF
    {'name': 'ThickSlice', 'scale': [0.125, 1.0], 'axes': [0, 1, 2], 'profile': 'gaussian', 'up': 'linear',
     'retain_stats': False, 'mix_prob': 0.0, 'region': None, 'p': 1.0},
    {'name': 'ZScore', 'region': None, 'p': 1.0},
]
SLAUG_APPEARANCE: list[dict[str, Any]] = [
    # SLAug (Su et al. 2023) location-scale, their code's defaults; GLA or CLA view with equal probability
    {'name': 'ClassLocationScale', 'scale_std': 0.1, 'scale': [0.9, 1.1], 'location_std': 0.5,
     'clamp_quantile': 0.2, 'background_threshold': 0.01, 'p_global': 0.5, 'max_label': 3, 'retain_stats': False,
     'mix_prob': 0.0, 'region': None, 'p': 1.0},
]


# The random-convolution presets: xdomain's geometric front (Spatial, Flip), then the method with its published
# defaults. GIN/IPA (Ouyang et al., TMI 2023; released code models/imagefilter3d.py, configs_exp.py): 4 layers,
# 2 intermediate channels, kernels 1 or 3, F.leaky_relu's slope 0.01, alpha ~ U(0, 1); IPA map from log-domain control
# points with epsilon 0.3, spacing a quarter of the field of view; p_blend 2/3 = two IPA copies of three per batch.
# Pro-RandConv (Choi et al., CVPR 2023): k = 3, L_max = 10, sigma_g ~ U(eps, 1), gamma, beta ~ N(0, 0.5^2); p 0.5 =
# the loss on each mini-batch and on its augmented copy (Algorithm 1).
GIN_IPA = [*XDOMAIN[:2], {
    'name': 'IPA', 'layers': 4, 'hidden_channels': 2, 'kernel_sizes': [1, 3], 'negative_slope': 0.01,
    'alpha': [0.0, 1.0], 'control_intervals': 4, 'epsilon': 0.3, 'p_blend': 0.6667, 'retain_stats': False,
    'mix_prob': 0.0, 'region': None, 'p': 1.0,
}]  # fmt: skip
PROGRESSIVE_RANDCONV = [*XDOMAIN[:2], {
    'name': 'ProgressiveRandConv', 'kernel_size': 3, 'max_repeats': 10, 'smoothing_sigma': [0.0001, 1.0],
    'gamma_std': 0.5, 'beta_std': 0.5, 'retain_stats': True, 'mix_prob': 0.0, 'region': None, 'p': 0.5,
}]  # fmt: skip

PINNED = {
    "none": lambda: [], "nnunet": lambda: NNUNET, "xdomain": lambda: XDOMAIN, "xdomain-plus": _xdomain_plus,
    "synthseg": lambda: XDOMAIN[:2] + SYNTHSEG_APPEARANCE, "slaug": lambda: XDOMAIN[:2] + SLAUG_APPEARANCE,
    "gin-ipa": lambda: GIN_IPA, "progressive-randconv": lambda: PROGRESSIVE_RANDCONV,
}


def test_every_preset_is_pinned():
    assert sorted(PINNED) == sorted(spineaug.presets())


@pytest.mark.parametrize("name", sorted(PINNED))
def test_preset_equals_its_reference_entry_by_entry(name):
    expected = PINNED[name]()
    entries = spineaug.Pipeline.from_preset(name).config()["transforms"]
    assert [e["name"] for e in entries] == [e["name"] for e in expected], name
    for i, (got, want) in enumerate(zip(entries, expected)):
        assert set(got) == set(want), f"{name}[{i}] {got['name']}: keys {sorted(set(got) ^ set(want))} added/removed"
        wrong = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
        assert not wrong, f"{name}[{i}] {got['name']}: (preset, reference) {wrong}"


def test_affine_defaults_are_auglabs():
    """No preset holds ``Affine``; its defaults are AugLab's AffineTransform values (CATALOG.md)."""
    assert spineaug.TRANSFORMS["Affine"].defaults() == {
        "degrees": (-5.0, 5.0), "translate": (0.1, 0.1, 0.1), "scale": (0.7, 1.4), "shear_deg": (-5.0, 5.0), "p": 1.0,
    }
