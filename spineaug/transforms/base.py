"""Base classes of random transforms: draw per-sample parameters, then apply them to the whole batch at once.

A transform's constructor is validated from its type annotations (:mod:`spineaug.validation`), so the same checks
and messages serve Python callers and JSON/YAML configs: a bad value raises a ``ConfigError`` that names the
argument.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, TypeVar

import torch
from pydantic import BaseModel, Field
from torch import Tensor, nn

from spineaug import _sampling as sample
from spineaug.batch import Batch, put_rows, take_rows
from spineaug.functional import intensity as FI
from spineaug.validation import Probability, validated_init


P = TypeVar("P", bound="Params")


@dataclass(frozen=True)
class Params:
    """Base of every transform's drawn parameters: one small frozen dataclass per effect, so they describe themselves.

    Every field is a CPU tensor with leading dimension B (one row per sample), a nested :class:`Params`, or ``None``
    (a part that is off for the whole batch). A sample whose gate said "no" holds neutral values.
    """

    def select(self: P, rows: Tensor) -> P:
        """The parameters of the samples ``rows`` (a CPU index tensor), in that order."""
        return dataclasses.replace(self, **{f.name: _select(getattr(self, f.name), rows) for f in dataclasses.fields(self)})


def _select(value: Tensor | Params | None, rows: Tensor) -> Tensor | Params | None:
    if value is None:
        return None
    if isinstance(value, Params):
        return value.select(rows)
    return value.index_select(0, rows)


class RandomTransform(nn.Module):
    """A random augmentation: ``sample_params`` draws, ``apply`` is deterministic given the draw.

    Subclasses set ``name`` (their config key), implement ``sample_params`` and ``apply``, and annotate their
    constructor arguments with the validated types of :mod:`spineaug.validation`.

    Parameters are a :class:`Params` dataclass of small CPU tensors with a leading batch dimension, drawn from an
    explicit CPU generator; a sample whose coin flip said "no" holds neutral parameters (or a ``False`` gate) and
    comes out unchanged.
    """

    name: ClassVar[str] = ""
    geometric: ClassVar[bool] = False
    requires_label: ClassVar[bool] = False
    kind: ClassVar[str] = ""
    """Cost class, for the benchmark: ``elementwise`` (one pass over the voxels), ``elementwise+quantile``,
    ``histogram``, ``label-lookup``, ``low-res field``, ``stencil`` (neighbourhood filter), ``resampling`` or
    ``index`` (exact index moves). The 3x-of-the-elementwise-floor target applies to ``elementwise``."""
    effect_gates: ClassVar[tuple[str, ...]] = ()
    """Sub-probabilities (besides ``p``) that each switch on a part of the effect; :meth:`forced` raises them.
    Probabilities that choose a variant (``p_inside``, ``p_foreground``, region options) are not listed."""

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Return the constructor's default values, by argument name."""
        params = inspect.signature(cls.__init__).parameters.values()
        empty = inspect.Parameter.empty
        return {q.name: q.default for q in params if q.name != "self" and q.default is not empty}

    @classmethod
    def _entry_value(cls, entry: dict[str, Any], key: str) -> Any:
        return entry[key] if key in entry else cls.defaults().get(key)

    @classmethod
    def forced(cls, entry: dict[str, Any]) -> dict[str, Any]:
        """Return a copy of config ``entry`` that fires for every sample and shows the transform's pure effect.

        The one meaning of "forced on" (gallery, benchmark tables and checks, contract test): ``p = 1``;
        each effect gate (:attr:`effect_gates`) whose value (given or default) is above 0 is set to 1 (a
        gate at 0 stays off); probabilities that choose a variant keep their values; blending with the
        original is off (``mix_prob = 0`` where the transform has it). Other keys are kept as given.
        """
        out = copy.deepcopy(dict(entry))
        out["p"] = 1.0
        for key in cls.effect_gates:
            if float(cls._entry_value(entry, key) or 0.0) > 0:
                out[key] = 1.0
        if "mix_prob" in entry or cls.defaults().get("mix_prob"):
            out["mix_prob"] = 0.0
        return out

    @classmethod
    def firing_probability(cls, entry: dict[str, Any]) -> float:
        """Return the per-sample probability that config ``entry`` changes a sample (absent keys: defaults)."""
        return float(cls._entry_value(entry, "p"))
    one_per_pipeline: ClassVar[str] = ""
    """Non-empty: a pipeline may hold at most one entry of this transform, for the reason given."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = validated_init(cls.__dict__["__init__"])

    def __init__(self, p: Probability = 1.0) -> None:
        super().__init__()
        self.p = p

    def config(self) -> dict[str, Any]:
        """Return the config entry that rebuilds this transform."""
        return {"name": self.name, **{k: _plain(v) for k, v in self._init_args.items()}}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._init_args.items())

    def sample_params(self, batch: Batch, generator: torch.Generator) -> Params:
        """Draw this transform's parameters for every sample of ``batch``."""
        raise NotImplementedError

    def apply(self, batch: Batch, params: Params, *, inplace: bool = False) -> Batch:
        """Apply drawn parameters to the whole batch; deterministic, no host synchronisation.

        The inputs are not checked (see :meth:`forward`). With ``inplace``, ``batch.image`` is an intermediate that
        the caller owns (never a user's tensor), so the transform may write into it instead of copying it.
        """
        raise NotImplementedError

    def check_label(self, label: Tensor | None) -> None:
        """Raise a ``ValueError`` when this transform needs a label map and ``label`` is ``None``.

        The one place this is checked: :meth:`forward` and :class:`~spineaug.Pipeline` call it before drawing.
        """
        if self.requires_label and label is None:
            raise ValueError(f"{self.name} needs a label map: call it (or the pipeline) with label=...")

    def forward(self, batch: Batch, generator: torch.Generator | None = None, params: Params | None = None) -> Batch:
        """Check the label, draw parameters (unless given) and apply them to a contiguous copy of the batch.

        Contiguous first (no copy when it already is), so the result does not depend on the input's memory layout.
        """
        self.check_label(batch.label)
        label = None if batch.label is None else batch.label.contiguous()
        batch = batch.replace(image=batch.image.contiguous(), label=label)
        if params is None:
            if generator is None:
                raise ValueError(f"{self.name}: pass generator= (a CPU torch.Generator) or params=")
            params = self.sample_params(batch, generator)
        return self.apply(batch, params)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, BaseModel):
        return value.model_dump()
    return value


def subset_apply(x: Tensor, gate: Tensor, fn, *, inplace: bool = False) -> Tensor:
    """Run ``fn`` only on the samples whose gate fired and put them back; the rest pass through unchanged.

    ``gate`` is a (B,) bool CPU tensor, so choosing the subset is host work and causes no device synchronisation.
    ``fn`` receives the selected rows (and the selected row indices as a CPU tensor) and returns rows like them; the
    rows may be a view of ``x`` (consecutive rows, :func:`spineaug.batch.take_rows`), so ``fn`` must not write into
    them.
    With ``inplace`` (``x`` is the pipeline's own intermediate) the rows are written back into ``x``, saving a copy
    of the whole batch.
    """
    gate = gate.to("cpu")
    if not bool(gate.any()):
        return x
    if bool(gate.all()):
        return fn(x, torch.arange(x.shape[0]))
    idx = gate.nonzero().flatten()
    rows = fn(take_rows(x, idx), idx).to(x.dtype)
    return put_rows(x if inplace else x.clone(), idx, rows)


def _own(y: Tensor, x: Tensor) -> bool:
    """Whether ``y`` may be overwritten: a dense result like ``x`` that does not share ``x``'s memory.

    ``x`` may be the caller's tensor, which is never written; a transform's result is either fresh or (for an
    identity) ``x`` itself or a view of it. Tensors that autograd tracks are left alone.
    """
    return (
        y.shape == x.shape
        and y.is_contiguous()
        and not (y.requires_grad or x.requires_grad)
        and y.untyped_storage().data_ptr() != x.untyped_storage().data_ptr()
    )


class RegionOptions(BaseModel, frozen=True, extra="forbid"):
    """Where an intensity transform acts, relative to the label map (CATALOG.md section 1.4, with the fixes).

    Per sample: with ``a ~ Bern(p_inside)`` and ``o ~ Bern(p_outside)``, the transform is kept only inside the
    region when ``a and not o``, only outside when ``o and not a``, everywhere otherwise. The region is the set of
    foreground label values, each kept independently with probability ``label_subset_p`` (1 = all of them).

    Attributes:
        p_inside: Probability of "inside the region only".
        p_outside: Probability of "outside the region only".
        label_subset_p: Probability that each foreground label value belongs to the region.
        max_label: Largest label value that can be part of a region.
    """

    p_inside: Probability = 0.0
    p_outside: Probability = 0.0
    label_subset_p: Probability = 1.0
    max_label: Annotated[int, Field(ge=1, le=65535)] = 255


@dataclass(frozen=True)
class IntensityParams(Params):
    """Parameters of an :class:`IntensityTransform`: the shared mechanics plus the transform's own values."""

    gate: Tensor  # (B,) bool: the transform fires for this sample
    alpha: Tensor  # (B,) weight of the ORIGINAL image when blending; 0 = pure transform
    region_mode: Tensor  # (B,) long: 0 everywhere, 1 inside the region, 2 outside
    keep: Tensor | None  # (B, max_label + 1) bool region lookup table, or None without region options
    values: Params | None  # the transform's own parameters (e.g. GammaParams), or None when it has none


class IntensityTransform(RandomTransform):
    """An appearance transform: changes image intensities only, never the label.

    Subclasses implement ``draw`` (their own per-sample values) and ``transform`` (the pure operation on the
    samples that fire). The base class handles, in this order for every transform: gate ``p`` -> ``transform`` ->
    blend with the original (``mix_prob``) -> ``retain_stats`` -> label region -> per-sample NaN/Inf fallback to the
    input. Only the samples whose gate fired are computed; which ones is known on the host (CPU parameters), so
    this costs no device synchronisation.
    """

    def __init__(
        self,
        p: Probability = 1.0,
        *,
        retain_stats: bool = False,
        mix_prob: Probability = 0.0,
        region: RegionOptions | None = None,
    ) -> None:
        super().__init__(p=p)
        self.retain_stats = retain_stats
        self.mix_prob = mix_prob
        self.region = region

    def draw(self, batch: Batch, generator: torch.Generator) -> Params | None:
        """Draw this transform's own per-sample values (``None``: it has none)."""
        return None

    def keeps_stats(self) -> bool:
        """Whether ``transform`` itself returns each channel's mean and std (a closed form of ``retain_stats``).

        Restoring them again would cost four passes or more over the batch and change nothing but rounding; they
        are still restored after blending with the original (``mix_prob``), which changes them. Without the restore
        there is no fallback to the input for channels whose spread collapsed either: the transform handles those
        itself (a constant channel comes back within a float rounding step of itself, or exactly where the closed
        form says so).
        """
        return False

    def transform(self, x: Tensor, values: Any, label: Tensor | None) -> Tensor:
        """Apply to the selected samples ``x`` (B', C, D, H, W) with their rows of ``draw``'s values; pure.

        ``label`` holds their label rows when the transform ``requires_label`` (or uses region options), else ``None``.
        """
        raise NotImplementedError

    def finite_output(self) -> bool:
        """Whether ``transform`` of a finite image is finite in the working dtype, so no NaN/Inf check is needed.

        True for results bounded by the input's range (or by ``sqrt(voxels)`` for a z-score, or by the statistics
        of a closed-form ``retain_stats``); such bounds need the range ``max - min`` of a channel to be finite in the
        working dtype. The check still runs when the result is cast to a narrower dtype (float16), which can
        overflow.
        """
        return False

    def sample_params(self, batch: Batch, generator: torch.Generator) -> IntensityParams:
        n = batch.size
        gate = sample.bernoulli(generator, (n,), self.p)
        mixing = sample.bernoulli(generator, (n,), self.mix_prob)
        alpha = torch.where(mixing, sample.uniform(generator, (n,), 0.0, 1.0), torch.zeros(()))
        mode = torch.zeros(n, dtype=torch.long)
        keep = None
        if self.region is not None:
            inside = sample.bernoulli(generator, (n,), self.region.p_inside)
            outside = sample.bernoulli(generator, (n,), self.region.p_outside)
            mode = torch.where(inside & ~outside, FI.REGION_INSIDE, torch.where(outside & ~inside, FI.REGION_OUTSIDE, 0))
            keep = sample.bernoulli(generator, (n, self.region.max_label + 1), self.region.label_subset_p)
            keep[:, 0] = False
        return IntensityParams(gate=gate, alpha=alpha, region_mode=mode, keep=keep, values=self.draw(batch, generator))

    def apply(self, batch: Batch, params: IntensityParams, *, inplace: bool = False) -> Batch:
        n = batch.size
        uses_region = params.keep is not None and bool((params.region_mode != FI.REGION_ALL).any())
        if uses_region and batch.label is None:
            raise ValueError(f"{self.name}: region options need a label map")
        mixes = bool((params.alpha > 0).any())

        def run(x: Tensor, idx: Tensor) -> Tensor:
            values = None if params.values is None else params.values.select(idx)
            # Only a transform that reads the label gets it: copying the label rows of a firing subset costs more
            # than a pass over the image rows (int64), so the others skip it.
            label = batch.label if self.requires_label or uses_region else None
            if label is not None and idx.numel() < n:  # a subset fires: its rows (a view when consecutive)
                label = take_rows(label, idx)
            y = self.transform(x, values, label)
            if mixes:
                y = FI.blend(x, y, params.alpha.index_select(0, idx))
            # per sample/channel: fall back to the input (degenerate statistics, NaN/Inf); checked: no NaN/Inf left
            use_x, checked = None, self.finite_output()
            if self.retain_stats and (mixes or not self.keeps_stats()):  # blending changes the statistics
                y, use_x = FI.restore_stats(y, x, inplace=_own(y, x))
                checked = True  # a NaN/Inf shows in the statistics
            if uses_region:
                mask = FI.region_mask(label, params.keep.index_select(0, idx))
                mode = params.region_mode.index_select(0, idx)
                y = FI.restrict_to_region(x, y, mask, mode, inplace=_own(y, x) and y.dtype == torch.result_type(y, x))
            checked = checked and y.dtype == x.dtype  # a cast to a narrower dtype (float16) can overflow
            y = y.to(x.dtype)
            if not checked:
                bad = FI.non_finite(y)
                use_x = bad if use_x is None else bad | use_x
            if use_x is None and _own(y, x):  # nothing to fall back to: the result is final
                return y
            if use_x is None:
                use_x = torch.zeros((), dtype=torch.bool, device=x.device)
            return FI.fall_back(y, x, use_x, inplace=_own(y, x))

        return batch.replace(image=subset_apply(batch.image, params.gate, run, inplace=inplace))
