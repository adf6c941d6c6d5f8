"""The study file: a validated description of one cross-domain study (data, sources, arms, model, schedule).

A study trains one model per cell (source domain x augmentation arm x seed) and evaluates every model on the
test cases of every domain. Everything that may differ between cells is the arm; everything else (network,
patch, optimiser, iterations, sampler, preprocessing) is shared and stated here, so the comparison is fair by
construction.

Example (``studies/quick.yaml``)::

    name: quick
    data: {kind: phantom, n_train: 4, n_val: 1, n_test: 2}
    sources: [t2w]
    arms: [none, xdomain]
    training: {iterations: 60, patch_size: [32, 32, 32]}

The bundled studies (``quick``, ``default``, ``full``, the ablations and ``example-nifti``, real data) ship with
the package in ``spineaug/studies/`` (the repository's ``studies/`` points there), so
``load_study("studies/quick.yaml")`` and ``spineaug study --quick`` work from any working directory. An arm given
as a config file is looked up relative to the study file's folder, then the folder above it (a study in
``studies/`` may write ``studies/arms/x.yaml``), then the working directory.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

import spineaug
from spineaug import phantom
from spineaug.config import load_config
from spineaug.data.datasets import SPIDER_LABELS, VERSE_LABELS
from spineaug.data.nnunet_raw import (
    SPLITS_FILE,
    NnUNetRawDataset,
    has_test_labels,
    label_values,
    read_dataset_json,
    read_splits,
)
from spineaug.harness.augment import BASELINE_ARMS, MixedPipeline, arm_file, arm_slug, build_augmentation
from spineaug.validation import ConfigError, RequiredSeed, ordered

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Spacing = PositiveFloat | tuple[PositiveFloat, PositiveFloat, PositiveFloat]
"""A voxel size in mm: one number (isotropic) or ``[x, y, z]`` along the RAS array axes (0 left-right,
1 posterior-anterior, 2 inferior-superior)."""
StudyClass = Literal["background", "vertebra", "disc", "canal"]
STUDY_CLASSES: tuple[str, ...] = ("background", "vertebra", "disc", "canal")
"""The study's classes; a class's index is its label value in training, evaluation and predicted label maps."""
NonNegativeSeed = Annotated[RequiredSeed, Field(ge=0)]
"""A seed the study names files or anatomies after (``cells/<source>__<arm>__s<seed>``): an integer >= 0, with the
engine's seed rule (:data:`spineaug.validation.RequiredSeed`: a bool, a float or a string is refused)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PhantomData(_Strict):
    """The synthetic phantom: the same anatomies rendered in every domain (paired), cached on disk.

    Training and validation anatomies use seeds ``0 .. n_train + n_val - 1``; test anatomies start at
    ``test_seed_start`` so the splits never share an anatomy.
    """

    kind: Literal["phantom"] = "phantom"
    domains: list[str] | None = None  # None: every phantom domain
    shape: tuple[PositiveInt, PositiveInt, PositiveInt] = (64, 80, 128)
    spacing: Annotated[float, Field(gt=0)] = 2.0
    n_train: PositiveInt = 12
    n_val: PositiveInt = 3
    n_test: PositiveInt = 6
    test_seed_start: NonNegativeSeed = 10_000
    cache: str = "data/cache/phantom"

    @model_validator(mode="after")
    def _check(self) -> PhantomData:
        if self.domains is not None and not self.domains:
            raise ValueError("domains: [] names no domain; leave it out for every phantom domain")
        if self.domains is not None and len(set(self.domains)) != len(self.domains):
            raise ValueError(f"domains: values must not repeat, got {self.domains}")
        for name in self.domains or ():
            if name not in phantom.DOMAINS:
                raise ValueError(f"unknown phantom domain {name!r}; known: {sorted(phantom.DOMAINS)}")
        if self.test_seed_start < self.n_train + self.n_val:
            raise ValueError(
                f"test_seed_start ({self.test_seed_start}) must be >= n_train + n_val ({self.n_train + self.n_val}) "
                "so test anatomies are never trained on"
            )
        return self

    def domain_names(self) -> list[str]:
        return list(self.domains or phantom.DOMAINS)


class NiftiDomain(_Strict):
    """One domain of real data: an nnU-Net raw dataset, or a folder of image/label pairs with ``{id}`` patterns.

    Cases are split by sorted case id: the first ``n_train`` train, the next ``n_val`` validate, the rest test
    (a domain used only as a target may set ``n_train = n_val = 0``). An nnU-Net raw dataset may refine that:

    - ``splits_final.json`` (in the dataset folder, or the file ``splits`` names, e.g. the one nnU-Net wrote to
      ``nnUNet_preprocessed``): training cases are the first ``n_train`` of fold ``fold``'s (default 0) ``train``
      list, validation cases the first ``n_val`` of its ``val`` list;
    - labelled test cases (``imagesTs/`` with ``labelsTs/``): they are the test cases; without them the test cases
      are the training cases (``labelsTr``) that are neither trained nor validated on.

    ``path`` and ``splits`` may use environment variables (``${nnUNet_raw}/Dataset101_CT``). Labels: by default
    the stored values are the study's classes (0 background, 1 vertebra, 2 disc, 3 canal); ``classes`` maps other
    label sets onto them: dataset label value (``26``), range (``"1-25"``) or, for nnU-Net raw data, the label's
    name in ``dataset.json`` (``"L1"``) -> study class; every label of ``dataset.json`` must be mapped (to
    ``background`` to drop it). ``label_map`` (``verse``, ``spider`` or value -> value) is the older form.
    The study trains single-channel models: a dataset with several input channels is refused.
    """

    format: Literal["nnunet_raw", "paired"] = "nnunet_raw"
    path: str
    image: str | None = None  # paired: glob pattern with {id}, relative to path
    label: str | None = None
    label_map: Literal["verse", "spider"] | dict[int, int] | None = None
    classes: dict[int | str, StudyClass] | None = None
    n_train: Annotated[int, Field(ge=0)] = 0
    n_val: Annotated[int, Field(ge=0)] = 0
    fold: Annotated[int, Field(ge=0)] | None = None  # fold of splits_final.json (None: 0)
    splits: str | None = None  # splits_final.json elsewhere than in the dataset folder

    @field_validator("path", "splits")
    @classmethod
    def _expand(cls, v: str | None) -> str | None:
        if v is None:
            return v
        expanded = os.path.expanduser(os.path.expandvars(v))
        unset = re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", expanded)
        if unset:
            raise ValueError(f"{v!r}: environment variable {unset[0]} is not set")
        return expanded

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        out = handler(self)  # the options added later are left out while unused: older study.json files still match
        return {k: v for k, v in out.items() if not (k in ("classes", "fold", "splits") and v is None)}

    @model_validator(mode="after")
    def _check(self) -> NiftiDomain:
        if not Path(self.path).is_dir():
            raise ValueError(f"data folder not found: {self.path}")
        if self.format == "paired" and (self.image is None or self.label is None):
            raise ValueError("format 'paired' needs 'image' and 'label' patterns with {id}")
        if self.format == "nnunet_raw" and (self.image is not None or self.label is not None):
            raise ValueError("'image' and 'label' patterns are for format 'paired'; an nnU-Net raw dataset is "
                             "read from imagesTr/labelsTr (set format: paired to use them)")  # fmt: skip
        if (self.n_train == 0) != (self.n_val == 0):
            raise ValueError("n_train and n_val must both be 0 (target only) or both positive (usable as a source)")
        if self.classes is not None and self.label_map is not None:
            raise ValueError("give 'classes' or 'label_map', not both")
        if self.format == "paired":
            if self.fold is not None or self.splits is not None:
                raise ValueError("'fold' and 'splits' are for nnU-Net raw datasets (splits_final.json)")
            self.label_mapping()
        else:
            self._check_nnunet()
        return self

    def dataset_name(self) -> str:
        return Path(self.path).name

    def splits_file(self) -> Path | None:
        """The ``splits_final.json`` that chooses training and validation cases, or None (sorted case ids)."""
        if self.splits is not None:
            return Path(self.splits)
        found = Path(self.path) / SPLITS_FILE
        return found if self.format == "nnunet_raw" and found.is_file() else None

    def label_mapping(self, dataset_labels: dict[str, int] | None = None) -> dict[int, int] | None:
        """Stored label value -> study class value (None: labels are used as stored).

        Args:
            dataset_labels: ``dataset.json``'s label name -> value (nnU-Net raw data), for ``classes`` keyed by name.
        """
        if self.classes is None:
            presets = {"verse": VERSE_LABELS, "spider": SPIDER_LABELS}
            return presets.get(self.label_map, self.label_map)  # type: ignore[arg-type]
        out: dict[int, int] = {}
        for key, name in self.classes.items():
            text = str(key).strip()
            if isinstance(key, int) or text.isdigit():
                values = [int(text)]
            elif re.fullmatch(r"\d+\s*-\s*\d+", text):
                lo, hi = (int(v) for v in text.split("-"))
                if lo > hi:
                    raise ValueError(f"{self.dataset_name()}: classes: range {text!r} runs backwards")
                values = list(range(lo, hi + 1))
            elif dataset_labels is not None and text in dataset_labels:
                values = [dataset_labels[text]]
            else:
                known = f"; dataset.json names {sorted(dataset_labels)}" if dataset_labels is not None else ""
                raise ValueError(f"{self.dataset_name()}: classes: {text!r} is not a label value, a range like "
                                 f"'1-25' or a label name of dataset.json{known}")  # fmt: skip
            for v in values:
                target = STUDY_CLASSES.index(name)
                if v == 0 and target != 0:
                    raise ValueError(f"{self.dataset_name()}: classes: value 0 is background, it cannot be {name!r}")
                if out.get(v, target) != target:
                    raise ValueError(f"{self.dataset_name()}: classes: label value {v} is mapped to both "
                                     f"{STUDY_CLASSES[out[v]]!r} and {name!r}")  # fmt: skip
                out[v] = target
        return out

    def _check_nnunet(self) -> None:
        """What can be checked from ``dataset.json``, the split file and the file names, before any training."""
        root, name = Path(self.path), self.dataset_name()
        try:
            meta = read_dataset_json(root)
        except FileNotFoundError as exc:  # a pydantic validator reports ValueErrors only
            raise ValueError(f"{name}: {exc} (an nnU-Net raw dataset folder holds dataset.json, imagesTr, "
                             "labelsTr)") from None  # fmt: skip
        channels = meta["channel_names"]
        if len(channels) > 1:
            raise ValueError(f"{name}: {len(channels)} input channels ({channels}); the study trains single-channel "
                             "models (one image per case), so this dataset cannot be used; keep one channel "
                             "(e.g. copy its _0000 files into a dataset of their own)")  # fmt: skip
        if "dataset" in meta:
            raise ValueError(f"{name}: dataset.json lists its files under 'dataset' (nnU-Net's custom layout); "
                             "the study reads the standard imagesTr/labelsTr layout")  # fmt: skip
        labels = label_values(meta, f"{name}/dataset.json")
        mapping = self.label_mapping(labels)
        if mapping is not None and self.classes is not None:
            unmapped = [f"{k!r} (value {v})" for k, v in labels.items() if v != 0 and v not in mapping]
            if unmapped:
                raise ValueError(f"{name}: label(s) {', '.join(unmapped)} of dataset.json are not in classes; map "
                                 "each to a study class (background to drop it)")  # fmt: skip
        elif mapping is None:
            for label, value in labels.items():
                study_value = STUDY_CLASSES.index(label) if label in STUDY_CLASSES else None
                if value >= len(STUDY_CLASSES) or study_value not in (None, value):
                    raise ValueError(f"{name}: dataset.json has label {label!r} = {value}; the study segments "
                                     f"{dict(zip(STUDY_CLASSES, range(4)))}: map the dataset's labels with "
                                     f"classes (e.g. {{{value}: vertebra}})")  # fmt: skip
        try:  # lists the files: a missing image, label or folder shows now
            present = set(NnUNetRawDataset(root).case_ids)
            if has_test_labels(root, meta["file_ending"]):
                NnUNetRawDataset(root, subset="Ts")
        except (FileNotFoundError, ValueError) as exc:
            raise ValueError(f"{name}: {exc}") from None
        n_cases = meta["numTraining"]
        splits = self.splits_file()
        if self.fold is not None and splits is None:
            raise ValueError(f"{name}: fold {self.fold} is set but there is no splits_final.json in {root} "
                             "(name one with 'splits')")  # fmt: skip
        if splits is None:
            if self.n_train + self.n_val > n_cases:
                raise ValueError(f"{name}: n_train + n_val = {self.n_train + self.n_val} but numTraining is {n_cases}")
            return
        try:
            train, val = read_splits(splits, self.fold or 0)
        except FileNotFoundError as exc:
            raise ValueError(f"{name}: {exc}") from None
        for key, n, ids in (("n_train", self.n_train, train), ("n_val", self.n_val, val)):
            if n > len(ids):
                raise ValueError(f"{name}: {key} = {n} but fold {self.fold or 0} of {splits} holds {len(ids)} "
                                 f"{'training' if key == 'n_train' else 'validation'} cases")  # fmt: skip
        missing = [c for c in [*train, *val] if c not in present]
        if missing:
            raise ValueError(f"{name}: {splits} names case(s) {missing[:5]} that are not in {root / 'labelsTr'} "
                             f"({len(missing)} missing)")  # fmt: skip


class NiftiData(_Strict):
    """Real NIfTI data, one entry per domain name."""

    kind: Literal["nifti"]
    domains: dict[str, NiftiDomain]

    def domain_names(self) -> list[str]:
        return list(self.domains)


class Preprocessing(_Strict):
    """The same for every domain: resampling to a common spacing, then a per-image robust z-score."""

    spacing: Spacing = 2.0  # one number, or [x, y, z] (e.g. anisotropic sagittal MRI)
    zscore_percentiles: Annotated[
        tuple[Annotated[float, Field(ge=0, le=100)], Annotated[float, Field(ge=0, le=100)]], AfterValidator(ordered)
    ] = (0.5, 99.5)


class Model(_Strict):
    """The network, identical for every cell: MONAI ``UNet`` (default) or ``DynUNet`` (nnU-Net-like).

    ``filters`` are the channels per resolution level (stride 2 between levels). On this project's 2-core CPU
    MONAI's ``UNet`` (one residual unit per level) trains ~3x faster per iteration than ``DynUNet`` with the
    same channels (measured: 0.5 vs 1.8 s at 2 x 48^3), so the CPU studies use it; ``full.yaml`` uses DynUNet.
    """

    name: Literal["UNet", "DynUNet"] = "UNet"
    filters: list[PositiveInt] = [8, 16, 32, 64]
    norm: Literal["instance", "batch"] = "instance"

    @field_validator("filters")
    @classmethod
    def _levels(cls, v: list[int]) -> list[int]:
        if not 2 <= len(v) <= 7:
            raise ValueError(f"needs 2 to 7 levels, got {len(v)}")
        return v


class Training(_Strict):
    """The schedule, identical for every cell."""

    patch_size: tuple[PositiveInt, PositiveInt, PositiveInt] = (64, 64, 64)
    batch_size: PositiveInt = 2
    iterations: PositiveInt = 2000
    lr: Annotated[float, Field(gt=0)] = 1e-3
    weight_decay: Annotated[float, Field(ge=0)] = 1e-5
    p_foreground: Probability = 0.33
    val_every: PositiveInt = 250
    checkpoint_every: PositiveInt = 250
    amp: bool = True
    threads: PositiveInt = 1
    loader_workers: Annotated[int, Field(ge=0)] = 0
    monitor_cases: Annotated[int, Field(ge=0)] = 1
    """Out-of-domain monitoring: at every ``val_every``, Dice on this many of the source's validation anatomies
    rendered in every other domain (``monitor_log.csv``; for learning curves only, never for model selection;
    0 disables). Real domains share no anatomies: there it uses the first validation cases of each other domain
    that has a validation split (never test cases)."""


class Evaluation(_Strict):
    """Sliding-window inference on every test case of every domain."""

    overlap: Annotated[float, Field(ge=0, lt=1)] = 0.25
    sw_batch_size: PositiveInt = 2
    hd95: bool = True
    save_predictions: Annotated[int, Field(ge=0)] = 1  # cases per domain written as NIfTI for the report
    bootstrap: PositiveInt = 2000


class StudyConfig(_Strict):
    """One study: ``name``, data, preprocessing, sources, arms, seeds, model, training and evaluation."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    description: str = ""
    data: Annotated[PhantomData | NiftiData, Field(discriminator="kind")] = PhantomData()
    preprocessing: Preprocessing = Preprocessing()
    sources: list[str]
    targets: list[str] | None = None  # None: every domain of the data
    arms: list[str]
    arm_sources: dict[str, list[str]] = {}  # restrict an arm to some sources (e.g. an expensive reference arm)
    reference_arm: str = "nnunet"
    seeds: list[NonNegativeSeed] = [0]
    arm_seeds: dict[str, list[NonNegativeSeed]] = {}  # an arm's own seeds instead of ``seeds``
    model: Model = Model()
    training: Training = Training()
    evaluation: Evaluation = Evaluation()
    base_dir: Annotated[str | None, Field(exclude=True)] = None
    """Folder of the study file (set by :func:`load_study`): relative arm files are found from it. Not part of the
    study's identity: ``model_dump`` leaves it out, so ``study.json`` and every hash are the same wherever the file
    lies. A pickled study keeps it: the runner hands each cell (and each submitit worker) the validated object."""

    @model_validator(mode="after")
    def _check(self) -> StudyConfig:
        spacings = self.preprocessing.spacing if isinstance(self.preprocessing.spacing, tuple) else \
            (self.preprocessing.spacing,)  # fmt: skip
        if isinstance(self.data, PhantomData) and any(abs(self.data.spacing - s) > 1e-6 for s in spacings):
            raise ValueError(f"data.spacing ({self.data.spacing}) must equal preprocessing.spacing "
                             f"({self.preprocessing.spacing}) for the phantom: it is rendered at the study's spacing")  # fmt: skip
        if isinstance(self.data, PhantomData) and self.training.monitor_cases > self.data.n_val:
            raise ValueError(f"training.monitor_cases ({self.training.monitor_cases}) > data.n_val "
                             f"({self.data.n_val}): the monitoring set is the source's validation anatomies, so "
                             f"at most {self.data.n_val} are monitored")  # fmt: skip
        domains = self.data.domain_names()
        for key, names in (("sources", self.sources), ("targets", self.targets or [])):
            for name in names:
                if name not in domains:
                    raise ValueError(f"{key}: unknown domain {name!r}; the data has {domains}")
        if not self.sources:
            raise ValueError("sources: name at least one source domain")
        if isinstance(self.data, NiftiData):
            for name in self.sources:
                if self.data.domains[name].n_train == 0:
                    raise ValueError(f"sources: domain {name!r} has n_train = 0, so it cannot be trained on")
        if self.targets is not None and not self.targets:
            raise ValueError("targets: [] names no domain; leave it out to evaluate on every domain of the data")
        for key, values in (("sources", self.sources), ("targets", self.targets or []), ("arms", self.arms),
                            ("seeds", self.seeds)):  # fmt: skip
            if len(set(values)) != len(values):
                raise ValueError(f"{key}: values must not repeat, got {values}")
        seedless = [a for a in self.arms if a not in self.arm_seeds]
        if not self.seeds and seedless:
            raise ValueError(f"seeds: [] leaves the arms {seedless} without a cell; name at least one seed (or "
                             "give each arm its arm_seeds)")  # fmt: skip
        if not self.arms:
            raise ValueError("arms: name at least one augmentation arm")
        for arm in self.arms:
            _check_arm(arm, self.training.patch_size, self.base_dir, self.training.batch_size)
        slugs = [arm_slug(a) for a in self.arms]
        if len(set(slugs)) != len(slugs):
            raise ValueError(f"arms: two arms would share a result folder (names {slugs}); rename a config file")
        if self.reference_arm not in self.arms:
            raise ValueError(f"reference_arm: {self.reference_arm!r} is not one of the arms {self.arms}")
        if "bgv2-nnunet" in self.arms and self.training.loader_workers < 1:
            raise ValueError("training.loader_workers: the bgv2-nnunet arm augments in DataLoader workers, set >= 1")
        for arm, arm_seeds in self.arm_seeds.items():
            if arm not in self.arms:
                raise ValueError(f"arm_seeds: {arm!r} is not one of the arms {self.arms}")
            if not arm_seeds or len(set(arm_seeds)) != len(arm_seeds):
                raise ValueError(f"arm_seeds.{arm}: name at least one seed, without repeats, got {arm_seeds}")
        for arm, names in self.arm_sources.items():
            if arm not in self.arms:
                raise ValueError(f"arm_sources: {arm!r} is not one of the arms {self.arms}")
            if not names or len(set(names)) != len(names):
                raise ValueError(f"arm_sources.{arm}: name at least one source, without repeats, got {names}")
            for name in names:
                if name not in self.sources:
                    raise ValueError(f"arm_sources.{arm}: {name!r} is not one of the sources {self.sources}")
        return self

    def target_domains(self) -> list[str]:
        return list(self.targets or self.data.domain_names())

    def seeds_of(self, arm: str) -> list[int]:
        """The seeds an arm runs with: its ``arm_seeds`` entry, else ``seeds``."""
        return list(self.arm_seeds.get(arm, self.seeds))

    def monitor_domains(self, source: str) -> list[str]:
        """Domains the out-of-domain monitoring set of ``source`` is rendered in: every target but the source."""
        if self.training.monitor_cases == 0:
            return []
        names = [d for d in self.target_domains() if d != source]
        if isinstance(self.data, NiftiData):
            names = [d for d in names if self.data.domains[d].n_val > 0]
        return names


def _check_arm(
    arm: str, patch_size: tuple[int, int, int], base_dir: str | None = None, batch_size: int = 2
) -> None:
    """Build the arm's augmentation now (a bad preset, config or missing library fails here, not mid-study)."""
    if arm.endswith((".json", ".yaml", ".yml")) and not arm_file(arm, base_dir).is_file():
        where = f" (looked in {base_dir}, {Path(base_dir).parent} and the working directory)" if base_dir else ""
        raise ValueError(f"arms: config file not found: {arm}{where}")
    if not (arm in spineaug.presets() or arm in BASELINE_ARMS or arm.endswith((".json", ".yaml", ".yml"))):
        raise ValueError(
            f"arms: unknown arm {arm!r}; use a preset ({spineaug.presets()}), {sorted(BASELINE_ARMS)} "
            "or a .json/.yaml config file"
        )
    try:
        aug = build_augmentation(arm, patch_size, base_dir=base_dir)
    except (RuntimeError, ImportError) as exc:  # a baseline library missing (its message names the extra)
        raise ValueError(f"arms: {arm!r} cannot run here: {exc}") from None
    except ConfigError as exc:  # the arm's own config file
        raise ConfigError(f"arms: {arm}: {exc}") from None
    if isinstance(aug.batch, MixedPipeline):
        mix, n_strong = aug.batch.mix, aug.batch.mix.n_strong(batch_size)
        if n_strong in (0, batch_size):
            idle, used = ("strong", mix.weak) if n_strong == 0 else ("weak", mix.strong)
            raise ValueError(f"arms: {arm}: mix fraction {mix.fraction} gives {n_strong} of {batch_size} samples "
                             f"(training.batch_size) to the strong preset, so the {idle} preset never runs; use "
                             f"the preset {used!r} as the arm")  # fmt: skip
    if arm.endswith((".json", ".yaml", ".yml")):
        seed = load_config(arm_file(arm, base_dir)).get("seed")
        if seed is not None:
            raise ValueError(f"arms: {arm}: seed {seed} has no effect in a study (each cell's training seed draws "
                             "the augmentation); remove it")  # fmt: skip


BUNDLED_STUDIES = Path(__file__).resolve().parent.parent / "studies"
"""The study files that ship with the package (``spineaug/studies/``; the repository's ``studies/`` links here)."""


def bundled_studies() -> list[str]:
    """Names of the bundled studies (``quick``, ``default``, ...)."""
    return sorted(p.stem for p in BUNDLED_STUDIES.glob("*.yaml"))


def study_file(source: str | Path) -> Path:
    """The file a study argument names: an existing path as given; else, for a bundled study's name (``quick``)
    or its repository path (``studies/quick.yaml``), the copy that ships with the package."""
    path = Path(source)
    if path.is_file() or path.is_absolute():
        return path
    if path.parent in (Path("."), Path("studies")):
        bundled = BUNDLED_STUDIES / (path.name if path.suffix else f"{path.name}.yaml")
        if bundled.is_file():
            return bundled
    raise FileNotFoundError(f"study file not found: {source} (bundled studies: {', '.join(bundled_studies())})")


def load_study(source: str | Path | dict[str, Any]) -> StudyConfig:
    """Read and validate a study file (YAML or JSON) or dict; errors name the file and the key.

    A bundled study can be named from anywhere (``"quick"``, ``"studies/quick.yaml"``); relative arm files are
    resolved from the study file's folder (:attr:`StudyConfig.base_dir`).
    """
    where = "study"
    if not isinstance(source, dict):
        path = study_file(source)
        where = str(source)
        source = load_config(path)
        if isinstance(source, dict):
            source = {**source, "base_dir": source.get("base_dir") or str(path.resolve().parent)}
    try:
        return StudyConfig.model_validate(source)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{where}: {problems}") from None
