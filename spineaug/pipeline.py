"""``Pipeline``: an ordered, validated list of random transforms, built in Python, from a preset or from a config."""

from __future__ import annotations

import copy
import os
import dataclasses
import time
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from spineaug.batch import Batch
from spineaug.config import build_pipeline_parts, build_transform, preset_config
from spineaug.transforms import GeometricTransform, Params, RandomTransform
from spineaug.validation import ConfigError, check_seed

TransformT = TypeVar("TransformT", bound=RandomTransform)


def _check_inputs(image: Tensor, label: Tensor | None, finite: bool) -> None:
    if not isinstance(image, Tensor):
        raise TypeError(f"image must be a torch.Tensor, got {type(image).__name__}")
    if image.ndim != 5:
        raise ValueError(f"image must be 5-D (B, C, D, H, W), or 4-D (C, D, H, W) for one unbatched volume, got "
                         f"shape {tuple(image.shape)}")
    if not image.is_floating_point():
        raise TypeError(f"image must be floating point, got dtype {image.dtype}")
    if image.shape[0] == 0:
        raise ValueError("image is an empty batch (B = 0)")
    if 0 in image.shape[1:]:
        raise ValueError(f"image has an empty channel or spatial dimension: shape {tuple(image.shape)}")
    if label is not None:
        if not isinstance(label, Tensor):
            raise TypeError(f"label must be a torch.Tensor or None, got {type(label).__name__}")
        if label.is_floating_point() or label.is_complex() or label.dtype == torch.bool:
            raise TypeError(f"label must be an integer label map, got dtype {label.dtype}")
        if label.ndim != 5 or label.shape[1] != 1:
            raise ValueError(f"label must be (B, 1, D, H, W), got shape {tuple(label.shape)}")
        if label.shape[0] != image.shape[0] or label.shape[2:] != image.shape[2:]:
            raise ValueError(
                f"label shape {tuple(label.shape)} does not match image shape {tuple(image.shape)} "
                "(batch and spatial dimensions must agree)"
            )
        if label.device != image.device:
            raise ValueError(f"label is on {label.device} but image is on {image.device}")
    if finite and image.is_meta:
        raise ValueError(
            "image is a meta tensor (no values), so it cannot be checked for NaN/Inf: build the pipeline with "
            "check_finite=False to trace the apply path on the meta device"
        )
    # amin and amax keep NaN and +-Inf: two reductions instead of isfinite(image).all(), which runs four full-size
    # passes on the CPU (x == x, abs, != inf, and): about 1.5 vs 25 ms at 2 x 128^3 (measured).
    if finite and not bool(torch.isfinite(image.amin()) & torch.isfinite(image.amax())):
        raise ValueError("image contains NaN or Inf values")


@dataclass
class StepClock:
    """Wall time of the steps of every pipeline call made while it is active (see :func:`timing_steps`).

    A step is one resampling for all geometric entries, or one other entry's ``apply``; parameter draws, input checks
    and the glue between steps are not in any step, so a call's time minus the sum of its steps is the pipeline's own
    overhead.

    Attributes:
        device: The device the calls run on; CUDA is synchronised before each reading of the clock.
        calls: Per call, ``(entry positions, seconds)`` of each step, in the order they ran.
    """

    device: torch.device
    calls: list[list[tuple[tuple[int, ...], float]]] = field(default_factory=list)

    def now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def step(self, steps: list[tuple[tuple[int, ...], float]], positions: tuple[int, ...],
             fn: Callable[[], Batch]) -> Batch:
        """Run ``fn`` and append its seconds to ``steps`` under ``positions``."""
        start = self.now()
        out = fn()
        steps.append((positions, self.now() - start))
        return out


_STEP_CLOCK: ContextVar[StepClock | None] = ContextVar("spineaug_step_clock", default=None)


@contextmanager
def timing_steps(device: torch.device | str = "cpu") -> Iterator[StepClock]:
    """Within the block, every :class:`Pipeline` call records how long each of its steps takes (for the benchmark).

    Outside it a call only reads one context variable. On CUDA the clock synchronises the device around each step,
    which removes the overlap of host and device work that a normal call has.
    """
    clock = StepClock(torch.device(device))
    token = _STEP_CLOCK.set(clock)
    try:
        yield clock
    finally:
        _STEP_CLOCK.reset(token)


def _storage(t: Tensor) -> int:
    """Address of a tensor's storage (0 for tensors without data, e.g. on ``meta``: never treated as owned)."""
    return t.untyped_storage().data_ptr()


def _check_generator(generator: Any) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if generator.device.type != "cpu":
        raise ValueError(
            f"generator must be a CPU torch.Generator (parameters are drawn on the host), got one on {generator.device}"
        )
    return generator


def _params_type(transform: RandomTransform) -> type:
    """The :class:`Params` class ``transform.sample_params`` returns (its return annotation; ``Params`` if absent)."""
    try:
        hint = typing.get_type_hints(type(transform).sample_params).get("return")
    except (NameError, TypeError):  # an annotation that does not resolve (e.g. a user's locally defined class)
        return Params
    return hint if isinstance(hint, type) and issubclass(hint, Params) else Params


def _batch_rows(params: Params) -> set[int]:
    """The leading (batch) sizes of every tensor in ``params``, nested parameters included."""
    rows: set[int] = set()
    for field in dataclasses.fields(params):
        value = getattr(params, field.name)
        if isinstance(value, Params):
            rows |= _batch_rows(value)
        elif isinstance(value, Tensor) and value.ndim > 0:
            rows.add(value.shape[0])
    return rows


def _check_patch(patch_size: Any) -> tuple[int, int, int]:
    try:
        patch = tuple(int(p) for p in patch_size)
        exact = all(int(p) == p for p in patch_size)
    except (TypeError, ValueError):
        patch, exact = (), False
    if len(patch) != 3 or not exact or any(p < 1 for p in patch):
        raise ValueError(f"patch_size must be three positive integers (D, H, W), got {patch_size!r}")
    return patch  # type: ignore[return-value]


@dataclass(frozen=True)
class TrainingPatch:
    """A pipeline for patch-based training: the loader reads ``read_size`` around the final patch, centred on it,
    and ``pipeline`` rotates/scales about the read's centre and cuts ``patch`` from its middle (nnU-Net's loading:
    ``read_size`` is its initial patch size). Built by :meth:`Pipeline.for_patch`, the one place that decides it.

    Attributes:
        pipeline: The pipeline to apply to a batch of reads; it outputs ``patch``.
        patch: The final patch, (D, H, W).
        read_size: The read around it, (D, H, W); larger by an even number per axis, so the patch sits exactly in
            the middle (equals ``patch`` when nothing rotates or scales).
    """

    pipeline: Pipeline
    patch: tuple[int, int, int]
    read_size: tuple[int, int, int]

    @property
    def margin(self) -> tuple[int, int, int]:
        """Voxels of the read on each side of the final patch, per axis."""
        return tuple((r - p) // 2 for r, p in zip(self.read_size, self.patch))  # type: ignore[return-value]


class Pipeline(nn.Module):
    """An ordered list of random transforms applied to batched 3-D volumes.

    Geometric entries (Spatial, Affine, Flip) are composed into one sampling grid and applied first, with a single
    resampling of the image (trilinear) and of the label (nearest neighbour); the other entries follow in list
    order. Each sample draws its own parameters from one explicit CPU ``torch.Generator``.

    Args:
        transforms: The transforms, in order.
        seed: Seed of the pipeline's own generator (used when a call passes none); ``None`` seeds it randomly.
        check_finite: Reject images containing NaN/Inf. This check reads the whole image (two reductions) and
            synchronises with the device once per call; switch it off in a training loop whose data you trust.

    Unbatched input: one volume ``(C, D, H, W)`` with a label ``(1, D, H, W)`` is augmented as a batch of one and
    returned with the same rank, as torchvision's v2 transforms do (parameters of ``return_params`` then have
    ``B = 1``). A batch of ``(B, C, D, H, W)`` goes through exactly the same code as before.

    ``train()`` / ``eval()`` do not switch augmentation off: the pipeline augments whenever it is called (it has
    no train-only behaviour). Skip the call for validation and inference, or build ``Pipeline.from_preset("none")``.

    Example:
        >>> import torch, spineaug
        >>> aug = spineaug.Pipeline.from_preset("nnunet")
        >>> img, lbl = aug(torch.randn(2, 1, 32, 32, 32), torch.zeros(2, 1, 32, 32, 32, dtype=torch.long))
        >>> one, one_lbl = aug(torch.randn(1, 32, 32, 32), torch.zeros(1, 32, 32, 32, dtype=torch.long))
        >>> tuple(one.shape), tuple(one_lbl.shape)
        ((1, 32, 32, 32), (1, 32, 32, 32))
    """

    def __init__(self, *transforms: RandomTransform, seed: int | None = None, check_finite: bool = True) -> None:
        super().__init__()
        for i, t in enumerate(transforms):
            if not isinstance(t, RandomTransform):
                raise TypeError(f"transforms[{i}] must be a spineaug transform, got {type(t).__name__}")
        limited = [t.name for t in transforms if t.one_per_pipeline]
        for t in transforms:
            if t.one_per_pipeline and limited.count(t.name) > 1:
                raise ConfigError(f"at most one {t.name!r} entry is allowed ({t.one_per_pipeline})")
        self.transforms = nn.ModuleList(transforms)
        self.seed = check_seed(seed)
        self.check_finite = check_finite
        self.generator = torch.Generator()
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)
        self._generator_pid = os.getpid()

    def _own_generator(self) -> torch.Generator:
        """The pipeline's generator, reseeded once in each DataLoader worker so workers never repeat draws."""
        if os.getpid() != self._generator_pid and torch.utils.data.get_worker_info() is not None:
            # torch.initial_seed() differs per worker and per epoch; mixing in our seed keeps runs reproducible.
            self.generator.manual_seed((torch.initial_seed() + 1_000_003 * (self.seed or 0)) % 2**63)
            self._generator_pid = os.getpid()
        return self.generator

    @classmethod
    def from_config(
        cls,
        source: str | Path | dict[str, Any],
        *,
        patch_size: tuple[int, int, int] | None = None,
        p_foreground: float | None = None,
        **kwargs: Any,
    ) -> Pipeline:
        """Build a pipeline from a config dict or a JSON/YAML file; every key and value is validated.

        Args:
            source: A config dict, or the path of a ``.json``/``.yaml`` file.
            patch_size: Overrides the ``Spatial`` entry's output patch (D, H, W); a config without a ``Spatial``
                entry gets one first that only crops to the patch (see :func:`spineaug.config.with_patch`).
            p_foreground: Overrides the ``Spatial`` entry's probability of centring the patch on a foreground voxel.
            **kwargs: Passed to the constructor (``seed``, ``check_finite``).
        """
        transforms, seed = build_pipeline_parts(source, patch_size=patch_size, p_foreground=p_foreground)
        kwargs.setdefault("seed", seed)
        return cls(*transforms, **kwargs)

    @classmethod
    def from_preset(
        cls,
        name: str,
        *,
        patch_size: tuple[int, int, int] | None = None,
        p_foreground: float | None = None,
        **kwargs: Any,
    ) -> Pipeline:
        """Build a bundled preset (see :func:`spineaug.presets`); ``patch_size``/``p_foreground`` as in ``from_config``.

        Example:
            >>> import spineaug
            >>> aug = spineaug.Pipeline.from_preset("none", patch_size=(64, 64, 64), p_foreground=0.33)
        """
        return cls.from_config(preset_config(name), patch_size=patch_size, p_foreground=p_foreground, **kwargs)

    def config(self) -> dict[str, Any]:
        """Return a config dict that rebuilds this pipeline."""
        return {"seed": self.seed, "transforms": [t.config() for t in self.transforms]}

    def find(self, cls: type[TransformT]) -> list[TransformT]:
        """The entries that are instances of ``cls``, in config order (e.g. ``find(RandomFlip)``)."""
        return [t for t in self.transforms if isinstance(t, cls)]

    def replace(self, cls: type[RandomTransform], **changes: Any) -> Pipeline:
        """A copy of this pipeline whose ``cls`` entries are rebuilt with ``changes`` (validated like a config).

        Example:
            >>> from spineaug.transforms import RandomFlip
            >>> aug = Pipeline.from_preset("nnunet").replace(RandomFlip, axes=(0,))
            >>> aug.find(RandomFlip)[0].axes
            (0,)

        Raises:
            ValueError: The pipeline has no ``cls`` entry.
            ConfigError: A changed value is invalid (the message names the entry and the key).
        """
        if not self.find(cls):
            raise ValueError(f"the pipeline has no {cls.__name__} entry (entries: {self.entry_keys()})")
        parts = [
            build_transform({**t.config(), **changes}, f"transforms[{i}]") if isinstance(t, cls) else copy.deepcopy(t)
            for i, t in enumerate(self.transforms)
        ]
        return type(self)(*parts, seed=self.seed, check_finite=self.check_finite)

    def for_patch(self, patch_size: tuple[int, int, int]) -> TrainingPatch:
        """This pipeline for training on ``patch_size`` patches, and the enlarged patch a loader must read for it.

        The one owner of the training patch (the study's arms, the nnU-Net trainers, the gallery and the benchmark
        all call it). The ``Spatial`` entry (added as a pure crop when the pipeline has none, as ``from_config``'s
        ``patch_size`` does) cuts ``patch_size`` from the middle of its input instead of choosing a position: the
        loader already placed the read, foreground-oversampled, around the final patch. The read is the smallest
        size that keeps every rotation, scaling and elastic displacement the pipeline can draw inside it
        (:meth:`RandomSpatial.read_size <spineaug.transforms.RandomSpatial.read_size>`), so nothing is padded.
        Other geometric entries (``Affine``, ``Flip``) do not enlarge the read. The pipeline is rebuilt from its
        :meth:`config`, so every entry must be a registry transform (:data:`spineaug.TRANSFORMS`).

        Example:
            >>> Pipeline.from_preset("nnunet").for_patch((64, 64, 64)).read_size
            (150, 154, 150)
            >>> Pipeline.from_preset("none").for_patch((64, 64, 64)).read_size
            (64, 64, 64)

        Raises:
            ValueError: ``patch_size`` is not three positive integers.
        """
        patch = _check_patch(patch_size)
        base = type(self).from_config(self.config(), patch_size=patch, seed=self.seed, check_finite=self.check_finite)
        parts, read = [], patch
        for t in base.transforms:
            if t.geometric:
                t, needs = t.for_patch(patch)
                read = tuple(max(a, b) for a, b in zip(read, needs))
            parts.append(t)
        pipeline = type(self)(*parts, seed=self.seed, check_finite=self.check_finite)
        return TrainingPatch(pipeline, patch, read)  # type: ignore[arg-type]

    def entry_keys(self) -> list[str]:
        """The keys of ``return_params``' dict, one per entry in config order: ``"<index>:<name>"``."""
        return [f"{i}:{t.name}" for i, t in enumerate(self.transforms)]

    def _replayed(self, params: Mapping[str, Params] | Sequence[Params], batch_size: int) -> list[Params]:
        """Parameters to replay, one per entry in config order, checked against the entries and the batch.

        Raises:
            TypeError: ``params`` is not a dict or list, or an entry is not the :class:`Params` its transform draws.
            ValueError: Wrong number of entries or keys, or parameters drawn for another batch size.
        """
        keys = self.entry_keys()
        if isinstance(params, (str, bytes)) or not isinstance(params, (Mapping, Sequence)):
            raise TypeError(
                "params must be the dict returned with return_params=True (or a list in config order), "
                f"got {type(params).__name__}"
            )
        if len(params) != len(keys):
            raise ValueError(f"params has {len(params)} entries but the pipeline has {len(keys)} transforms {keys}")
        if isinstance(params, Mapping):
            if set(params) != set(keys):
                raise ValueError(f"params keys {sorted(params)} do not match the pipeline's entries {keys}")
            given = [params[k] for k in keys]
        else:
            given = list(params)
        for key, t, p in zip(keys, self.transforms, given):
            expected = _params_type(t)
            if not isinstance(p, expected):
                raise TypeError(
                    f"params[{key!r}] must be of type {expected.__name__} (drawn by {t.name}), got {type(p).__name__}"
                )
            rows = _batch_rows(p)
            if rows and rows != {batch_size}:
                raise ValueError(
                    f"params[{key!r}] was drawn for a batch of {' / '.join(map(str, sorted(rows)))} samples but the image has "
                    f"B = {batch_size}: replay params only on a batch of the size they were drawn for"
                )
        return given

    def forward(
        self,
        image: Tensor,
        label: Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
        params: Mapping[str, Params] | Sequence[Params] | None = None,
        return_params: bool = False,
    ):
        """Augment a batch (or one unbatched volume).

        Args:
            image: Images, (B, C, D, H, W), floating point; or one volume (C, D, H, W).
            label: Label maps, (B, 1, D, H, W), integer, or ``None``; (1, D, H, W) with an unbatched image.
            generator: CPU generator to draw from; defaults to the pipeline's own (seeded) generator.
            params: Parameters returned by an earlier call with ``return_params=True`` (or a list of them in config
                order): replays that call exactly.
            return_params: Also return the drawn parameters: a dict in config order, keyed by entry
                (``"0:Spatial"``, ``"1:Flip"``, ... see :meth:`entry_keys`), each a typed
                :class:`~spineaug.transforms.Params` dataclass of per-sample CPU tensors.

        Returns:
            ``(image, label)``, or ``(image, label, params)`` with ``return_params``. The caller's tensors are not
            modified; output dtype and device equal the input's, and so does the rank (an unbatched volume comes
            back unbatched). Outputs are contiguous and do not depend on the input's memory layout (the input is
            made contiguous first).
        """
        if isinstance(image, Tensor) and image.ndim == 4:  # one volume: a batch of one, returned unbatched
            if label is not None and (not isinstance(label, Tensor) or label.ndim != 4):
                shape = tuple(label.shape) if isinstance(label, Tensor) else type(label).__name__
                raise ValueError(f"an unbatched image (C, D, H, W) needs an unbatched label (1, D, H, W), got {shape}")
            out = self.forward(image[None], None if label is None else label[None], generator=generator,
                               params=params, return_params=return_params)  # fmt: skip
            return (out[0][0], None if out[1] is None else out[1][0], *out[2:])
        _check_inputs(image, label, self.check_finite)
        if params is not None and generator is not None:
            raise ValueError(
                "pass generator= or params=, not both: replayed params draw nothing, so the generator would be ignored"
            )
        generator = self._own_generator() if generator is None else _check_generator(generator)
        for t in self.transforms:
            t.check_label(label)
        given = None if params is None else self._replayed(params, image.shape[0])
        drawn: list[Params | None] = [None] * len(self.transforms)
        caller = _storage(image)
        # One layout for every computation: the same values give the same bits whatever the caller's strides
        # (channels-last, permuted or strided views); a contiguous input is used as is, without a copy.
        batch = Batch(image.contiguous(), None if label is None else label.contiguous())

        def draw(i: int) -> Params:
            drawn[i] = self.transforms[i].sample_params(batch, generator) if given is None else given[i]
            return drawn[i]

        clock = _STEP_CLOCK.get()
        timed: list[tuple[tuple[int, ...], float]] = []
        if clock is not None:
            clock.calls.append(timed)

        def run(positions: tuple[int, ...], step: Callable[[], Batch]) -> Batch:
            return step() if clock is None else clock.step(timed, positions, step)

        # Geometric entries first: all drawn on the input, then one resampling for all of them.
        geometric = [i for i, t in enumerate(self.transforms) if t.geometric]
        if geometric:
            steps = [(self.transforms[i], draw(i)) for i in geometric]
            batch = run(tuple(geometric), lambda: GeometricTransform.apply_together(batch, steps))
        for i, t in enumerate(self.transforms):
            if t.geometric:
                continue
            p = draw(i)
            # Once the image is an intermediate of this call, transforms may write into it (never the caller's).
            owned = _storage(batch.image) != caller and not batch.image.requires_grad
            batch = run((i,), lambda: t.apply(batch, p, inplace=owned))
        if return_params:
            return batch.image, batch.label, dict(zip(self.entry_keys(), drawn))
        return batch.image, batch.label
