"""Reference expressions: the cheapest plain-torch computation of each transform's kind of work, and its target.

The target for stencil and label-lookup transforms is "within 5x of the cheapest equivalent torch expression"; for
the grid resampling transforms it is "one grid_sample-class pass per tensor", so their reference is torch's own
``affine_grid`` and one ``grid_sample`` per tensor; histogram equalisation, the bias field and the two axis-operator
degradations (low resolution, thick slices) are held to 3x of theirs (the targets: ``spineaug._schema``). The
elementwise transforms whose map is a transcendental function (``pow``, ``log1p``, the noise generator's hash and
``erfinv``) get a reference too, one pass of that function over the batch: on a CPU such a pass alone costs several
floor passes (it is compute-bound, not memory-bound), which the elementwise class's 3x-the-floor verdict does not
excuse; the reference shows how much of the gap is the function itself. Each reference below does the same class of work on the same batch, written as directly as torch
allows, and is timed in the same run as the transform forced on (``transforms.csv``: ``reference``,
``reference_mean_s``, ``ratio_to_reference``). They are lower bounds on effort, not re-implementations: they skip
what the transform must also do (per-sample gates, statistics restoring, blending, region masks, dtype care), so a
ratio near 1 means there is little left to gain.

=================== =====================================================================================
transform           reference expression
=================== =====================================================================================
GaussianBlur        three grouped 1-D ``conv3d`` passes with per-sample 7-tap kernels (sigma 1), zero pad
UnsharpMask         the same blur, then ``x + a * (x - blur)`` (one ``torch.lerp``)
ScharrEdge          one dense ``conv3d`` with the three 3x3x3 Scharr kernels, ``abs().sum(1)``
Laplacian           one dense ``conv3d`` with the 26-neighbour 3x3x3 Laplacian kernel
RandomConv          one grouped ``conv3d`` with per-sample k^3 kernels, k cycling through 3, 5, 7 (the draw)
HistogramEqualization per-sample min/max, bin index, ``scatter_add_`` histogram, ``cumsum``, ``gather``
LabelIntensityRemap per-label sums by ``scatter_add_``, then ``x * a[label] + b[label]`` (two ``gather``)
LabelAppearance     per-label sums of ``x`` and ``x^2`` by ``scatter_add_``, then the same two-gather affine
BiasField           the per-sample polynomial log-field by one ``einsum`` of 1-D Vandermonde vectors, ``exp``,
                    one multiply
LowResolution       three batched ``matmul`` with one per-sample (n x n) round-trip operator per axis
ThickSlice          the same three batched ``matmul`` (each sample degrades its own axis: identity on the others)
Gamma, InverseGamma ``abs`` (a positive base), then one ``pow`` pass with a per-sample exponent
IntensityFunction   ``abs``, then one ``log1p`` pass (the benchmarked entry's function)
GaussianNoise       ``torch.randn_like`` plus one multiply-add (torch's own generator: one stream for the whole
                    batch, which the transform cannot use because samples must not depend on each other)
LabelSynthesis,     per-sample min/max, per-label 256-bin histogram by ``scatter_add_``, ``cumsum``, one ``gather``
ClassLocationScale  of each voxel's CDF value, then the two-gather affine ``a[label] * x + b[label]``
GIN                 four grouped ``conv3d`` layers (1 -> 2 -> 2 -> 2 -> 1 channels, per-sample 3^3 kernels, zero pad),
                    leaky ReLU between them, ``lerp`` with the input, Frobenius-norm rescaling
IPA                 the GIN reference twice, a 6^3 control grid upsampled by three ``einsum`` with B-spline
                    weight matrices, ``exp``, min-max, one ``lerp`` of the two views
ProgressiveRandConv L grouped ``conv3d`` passes with one per-sample 3^3 kernel, each followed by ``var_mean``
                    standardisation, affine and ``tanh``; L the largest of B draws from 1..10 (the draw)
Spatial, Affine     ``affine_grid`` of a per-sample rotation, trilinear ``grid_sample`` of the image, nearest
                    ``grid_sample`` of the label as float32 (exact only below 2**24, which spineaug does not assume)
=================== =====================================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from spineaug._schema import SAME_WORK_TARGET, REFERENCE_TARGET, RESAMPLING_TARGET


@dataclass(frozen=True)
class Reference:
    """One reference expression: what it computes, a factory binding it to a batch, and the multiple of its time
    the transform forced on must stay within."""

    description: str
    build: Callable[[Tensor, Tensor], Callable[[Tensor, Tensor], Tensor]]
    target: float = REFERENCE_TARGET


def _grouped(x: Tensor) -> Tensor:
    """(B, C, D, H, W) -> (1, B*C, D, H, W): one group per channel, so each sample gets its own kernel."""
    return x.reshape(1, -1, *x.shape[2:])


def _blur(image: Tensor, _label: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
    n = image.shape[0] * image.shape[1]
    t = torch.arange(-3, 4, dtype=image.dtype, device=image.device)
    k = torch.exp(-0.5 * t**2)
    k = (k / k.sum()).expand(n, 7).contiguous()
    kd, kh, kw = k.view(n, 1, 7, 1, 1), k.view(n, 1, 1, 7, 1), k.view(n, 1, 1, 1, 7)

    def fn(x: Tensor, _y: Tensor) -> Tensor:
        g = _grouped(x)
        g = F.conv3d(g, kd, padding=(3, 0, 0), groups=n)
        g = F.conv3d(g, kh, padding=(0, 3, 0), groups=n)
        return F.conv3d(g, kw, padding=(0, 0, 3), groups=n).view_as(x)

    return fn


def _unsharp(image: Tensor, label: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
    blur = _blur(image, label)
    return lambda x, y: torch.lerp(blur(x, y), x, 2.5)  # x + 1.5 (x - blur)


def _scharr(image: Tensor, _label: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
    s = torch.tensor([3.0, 10.0, 3.0], dtype=image.dtype, device=image.device) / 16
    d = torch.tensor([-0.5, 0.0, 0.5], dtype=image.dtype, device=image.device)
    w = torch.stack([torch.einsum("i,j,k->ijk", *axes) for axes in ((d, s, s), (s, d, s), (s, s, d))])[:, None]

    def fn(x: Tensor, _y: Tensor) -> Tensor:
        return F.conv3d(x, w, padding=1).abs().sum(1, keepdim=True)

    return fn


def _laplacian(image: Tensor, _label: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
    w = torch.full((1, 1, 3, 3, 3), -1.0 / 26, dtype=image.dtype, device=image.device)  # the 26 neighbours
    w[0, 0, 1, 1, 1] = 1.0
    return lambda x, _y: F.conv3d(x, w, padding=1)


def _random_conv(image: Tensor, _label: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
    n = image.shape[0] * image.shape[1]
    g = torch.Generator().manual_seed(0)
    kernels = [torch.randn(n, 1, k, k, k, generator=g).to(image) / k**1.5 for k in (3, 5, 7)]
    calls = [0]

    def fn(x: Tensor, _y: Tensor) -> Tensor:
        w = kernels[calls[0] % len(kernels)]
        calls[0] += 1
        return F.conv3d(_grouped(x), w, padding=w.shape[-1] // 2, groups=n).view_as(x)

    return fn


def _gin_layers(image: Tensor, g: torch.Generator) -> list[Tensor]:
    b, c = image.shape[:2]
    chans = [(2, c), (2, 2), (2, 2), (c, 2)]  # (out, in) per layer
    return [torch.randn(b * o, i, 3, 3, 3, generator=g).to(image) for o, i in chans]


def _gin_view(x: Tensor, layers: list[Tensor], alpha: Tensor) -> Tensor:
    b = x.shape[0]
    y = x.reshape(1, -1, *x.shape[2:])
    for i, w in enumerate(layers):
        y = F.conv3d(y, w, padding=1, groups=b)
        if i < len(layers) - 1:
            y = F.leaky_relu(y, 0.01)
    y = torch.lerp(x, y.view_as(x), alpha)
    dims = tuple(range(1, x.ndim))
    return y * (torch.linalg.vector_norm(x, dim=dims, keepdim=True) / torch.linalg.vector_norm(y, dim=dims, keepdim=True))


def _gin(image: Tensor, _label: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
    g = torch.Generator().manual_seed(0)
    layers = _gin_layers(image, g)
    alpha = torch.rand(image.shape[0], 1, 1, 1, 1, generator=g).to(image)
    return lambda x, _y: _gin_view(x, layers, alpha)


def _ipa(image: Tensor, _label: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
    g = torch.Generator().manual_seed(0)
    views = [(_gin_layers(image, g), torch.rand(image.shape[0], 1, 1, 1, 1, generator=g).to(image)) for _ in "ab"]
    control = (0.3 * torch.randn(image.shape[0], 6, 6, 6, generator=g)).to(image)
    bd, bh, bw = (torch.rand(s, 6, generator=g).to(image) for s in image.shape[2:])  # any dense (size, 6) weights

    def fn(x: Tensor, _y: Tensor) -> Tensor:
        m = torch.einsum("bihw,di->bdhw", torch.einsum("bijw,hj->bihw", torch.einsum("bijk,wk->bijw", control, bw), bh),
                         bd)[:, None].exp()
        lo, hi = m.amin(dim=(2, 3, 4), keepdim=True), m.amax(dim=(2, 3, 4), keepdim=True)
        return torch.lerp(_gin_view(x, *views[1]), _gin_view(x, *views[0]), (m - lo) / (hi - lo))

    return fn


def _progressive(image: Tensor, _label: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
    b, c = image.shape[:2]
    g = torch.Generator().manual_seed(0)
    w = (torch.randn(b * c, 1, 3, 3, 3, generator=g) / 27**0.5).to(image)
    gamma, beta = (0.5 * torch.randn(2, b, c, 1, 1, 1, generator=g)).to(image)

    def fn(x: Tensor, _y: Tensor) -> Tensor:
        steps = int(torch.randint(1, 11, (b,), generator=g).max())  # host draw, like the transform's CPU parameters
        for _ in range(steps):
            z = F.conv3d(_grouped(x), w, padding=1, groups=b * c).view_as(x)
            var, mean = torch.var_mean(z, dim=(2, 3, 4), keepdim=True, correction=0)
            x = torch.tanh(gamma * (z - mean) * torch.rsqrt(var + 1e-5) + beta)
        return x

    return fn


def _histogram(image: Tensor, _label: Tensor, bins: int = 256) -> Callable[[Tensor, Tensor], Tensor]:
    def fn(x: Tensor, _y: Tensor) -> Tensor:
        flat = x.flatten(1)
        lo, hi = flat.aminmax(dim=1, keepdim=True)
        idx = ((flat - lo) * ((bins - 1) / (hi - lo).clamp_min(1e-12))).long()
        hist = torch.zeros(flat.shape[0], bins, dtype=flat.dtype, device=flat.device).scatter_add_(
            1, idx, torch.ones_like(flat))
        cdf = hist.cumsum(1) / flat.shape[1]
        return cdf.gather(1, idx).view_as(x)

    return fn


def _label_lookup(image: Tensor, label: Tensor, second_moment: bool = False) -> Callable[[Tensor, Tensor], Tensor]:
    n_labels = int(label.max()) + 1  # setup only, outside the clock

    def fn(x: Tensor, y: Tensor) -> Tensor:
        flat, lab = x.flatten(1), y.flatten(1)
        sums = torch.zeros(flat.shape[0], n_labels, dtype=flat.dtype, device=flat.device).scatter_add_(1, lab, flat)
        scale = torch.ones_like(sums)
        if second_moment:
            squares = torch.zeros_like(sums).scatter_add_(1, lab, flat * flat)
            scale = torch.rsqrt(squares.clamp_min(1e-12))
        return torch.addcmul(sums.gather(1, lab), flat, scale.gather(1, lab)).view_as(x)

    return fn


def _label_histogram(image: Tensor, label: Tensor, bins: int = 256) -> Callable[[Tensor, Tensor], Tensor]:
    n_labels = int(label.max()) + 1  # setup only, outside the clock
    scale = torch.linspace(0.9, 1.1, n_labels, dtype=image.dtype, device=image.device).expand(image.shape[0], -1)

    def fn(x: Tensor, y: Tensor) -> Tensor:
        flat, lab = x.flatten(1), y.flatten(1)
        lo, hi = flat.aminmax(dim=1, keepdim=True)
        code = lab * bins + ((flat - lo) * ((bins - 1) / (hi - lo).clamp_min(1e-12))).long()
        hist = torch.zeros(flat.shape[0], n_labels * bins, dtype=flat.dtype, device=flat.device).scatter_add_(
            1, code, torch.ones_like(flat))
        cdf = hist.view(-1, n_labels, bins).cumsum(2).view(flat.shape[0], -1)
        return torch.addcmul(cdf.gather(1, code), flat, scale.gather(1, lab)).view_as(x)

    return fn


def _resampling(image: Tensor, _label: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
    angle = torch.linspace(0.2, 0.4, image.shape[0], dtype=torch.float64)
    cos, sin, zero, one = torch.cos(angle), torch.sin(angle), torch.zeros_like(angle), torch.ones_like(angle)
    theta = torch.stack([torch.stack(r, -1) for r in ([cos, -sin, zero, zero], [sin, cos, zero, zero],
                                                        [zero, zero, one, zero])], -2)  # about D, (B, 3, 4)
    theta = theta.to(image.device, torch.float32)

    def fn(x: Tensor, y: Tensor) -> Tensor:
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        labels = F.grid_sample(y.float(), grid, mode="nearest", padding_mode="zeros", align_corners=False)
        return out + labels.to(y.dtype)  # both passes feed the result

    return fn


_RESAMPLING = Reference("affine_grid, trilinear grid_sample of the image, nearest grid_sample of the label",
                        _resampling, RESAMPLING_TARGET)


def _bias_field(image: Tensor, _label: Tensor, order: int = 3) -> Callable[[Tensor, Tensor], Tensor]:
    g = torch.Generator().manual_seed(0)
    dense = (0.2 * torch.randn(image.shape[0], order + 1, order + 1, order + 1, generator=g)).to(image)
    powers = torch.arange(order + 1, dtype=image.dtype, device=image.device)
    vz, vy, vx = (torch.linspace(-1.0, 1.0, n, dtype=image.dtype, device=image.device)[:, None].pow(powers)
                  for n in image.shape[2:])

    def fn(x: Tensor, _y: Tensor) -> Tensor:
        return x * torch.einsum("bkji,dk,hj,wi->bdhw", dense, vz, vy, vx).exp_()[:, None]

    return fn


def _axis_operators(image: Tensor, _label: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
    b, _, d, h, w = image.shape
    g = torch.Generator().manual_seed(0)
    r_d, r_h, r_w = (torch.rand(b, n, n, generator=g).to(image) / n for n in (d, h, w))  # any dense operators

    def fn(x: Tensor, _y: Tensor) -> Tensor:
        c = x.shape[1]
        y = x.matmul(r_w.transpose(1, 2).view(b, 1, 1, w, w))
        y = r_h.view(b, 1, 1, h, h).matmul(y)
        return r_d.view(b, 1, d, d).matmul(y.reshape(b, c, d, h * w)).view_as(x)

    return fn


def _pow(image: Tensor, _label: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
    gamma = torch.linspace(0.7, 1.5, image.shape[0], dtype=image.dtype, device=image.device).view(-1, 1, 1, 1, 1)
    return lambda x, _y: x.abs().pow_(gamma)  # abs: pow of a negative base is NaN, a different (faster) path


def _log1p(image: Tensor, _label: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
    return lambda x, _y: x.abs().log1p_()


def _randn(image: Tensor, _label: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
    sigma = torch.linspace(0.1, 1.0, image.shape[0], dtype=image.dtype, device=image.device).view(-1, 1, 1, 1, 1)
    return lambda x, _y: torch.randn_like(x).mul_(sigma).add_(x)

REFERENCES: dict[str, Reference] = {
    "GaussianBlur": Reference("3 grouped 1-D conv3d passes, per-sample 7-tap kernels", _blur),
    "UnsharpMask": Reference("the blur reference + one lerp", _unsharp),
    "ScharrEdge": Reference("dense conv3d with the 3 Scharr 3x3x3 kernels, abs, sum", _scharr),
    "Laplacian": Reference("dense conv3d with the 26-neighbour 3x3x3 Laplacian kernel", _laplacian),
    "RandomConv": Reference("grouped conv3d with per-sample k^3 kernels, k = 3, 5, 7 in turn", _random_conv),
    "HistogramEqualization": Reference("aminmax, bin index, scatter_add histogram, cumsum, gather", _histogram,
                                       SAME_WORK_TARGET),
    "BiasField": Reference("einsum of the polynomial log-field, exp, multiply", _bias_field, SAME_WORK_TARGET),
    "LowResolution": Reference("3 batched matmul, one per-sample n x n operator per axis", _axis_operators,
                               SAME_WORK_TARGET),
    "ThickSlice": Reference("3 batched matmul, one per-sample n x n operator per axis", _axis_operators,
                            SAME_WORK_TARGET),
    "Gamma": Reference("abs, one pow pass, per-sample exponent", _pow, SAME_WORK_TARGET),
    "InverseGamma": Reference("abs, one pow pass, per-sample exponent", _pow, SAME_WORK_TARGET),
    "IntensityFunction": Reference("abs, one log1p pass", _log1p, SAME_WORK_TARGET),
    "GaussianNoise": Reference("randn_like (one stream for the batch), multiply-add", _randn, SAME_WORK_TARGET),
    "LabelIntensityRemap": Reference("per-label scatter_add sums, two-gather affine", _label_lookup),
    "LabelAppearance": Reference("per-label scatter_add of x and x^2, two-gather affine",
                                 lambda x, y: _label_lookup(x, y, second_moment=True)),
    "LabelSynthesis": Reference("per-label scatter_add histogram, cumsum, gather, two-gather affine", _label_histogram),
    "ClassLocationScale": Reference("per-label scatter_add histogram, cumsum, gather, two-gather affine",
                                    _label_histogram),
    "GIN": Reference("4 grouped conv3d layers (per-sample 3^3, 1-2-2-2-1 channels), leaky ReLU, lerp, Frobenius "
                     "rescale", _gin),
    "IPA": Reference("the GIN reference twice, 6^3 control-grid map by einsum, exp, min-max, lerp", _ipa),
    "ProgressiveRandConv": Reference("L grouped 3^3 conv3d passes (L = max of B draws in 1..10), each with var_mean "
                                     "standardisation, affine, tanh", _progressive),
    "Spatial": _RESAMPLING,
    "Affine": _RESAMPLING,
}
"""Reference expression per transform name."""

__all__ = ["SAME_WORK_TARGET", "REFERENCES", "REFERENCE_TARGET", "RESAMPLING_TARGET", "Reference"]
