"""CONTRIBUTING.md's lists of files to touch, checked against the code: a guide that goes stale fails here.

Each list of the guide is a section (``## Add ...``, or a ``###`` subsection) with an ``Example:`` item and numbered
items that start with a path. A path may hold placeholders (``<Name>``, ``<family>``...), filled from a registered
item; a path marked **(all)** must hold every registered item of the section's kind (its own file when the path has
a placeholder, else a mention of the item's name in the file). Every other path in backticks must exist.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import spineaug

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "CONTRIBUTING.md"
STUDIES = ROOT / "spineaug" / "studies"


@dataclass(frozen=True)
class Entry:
    path: str
    every: bool


@dataclass(frozen=True)
class Section:
    title: str
    example: str
    entries: tuple[Entry, ...]
    text: str


def _sections(text: str | None = None) -> dict[str, Section]:
    """The guide's lists, by heading (``Add a transform``, ``A spineaug arm``...)."""
    out: dict[str, Section] = {}
    for block in re.split(r"^#{2,3} ", GUIDE.read_text() if text is None else text, flags=re.M)[1:]:
        title, _, body = block.partition("\n")
        entries = tuple(Entry(m[1], bool(m[2]))
                        for m in re.finditer(r"^\d+\. `([^`]+)`( \*\*\(all\)\*\*)?", body, re.M))  # fmt: skip
        if entries:
            example = re.search(r"^Example: `([^`]+)`", body, re.M)
            assert example, f"CONTRIBUTING.md, {title!r}: no 'Example: `...`' line"
            out[title.strip()] = Section(title.strip(), example[1], entries, body)
    return out


# ------------------------------------------------------------------------------ the registries, read from the code


def _transforms() -> dict[str, dict[str, str]]:
    out = {}
    for name, cls in spineaug.TRANSFORMS.items():
        module = Path(*cls.__module__.split(".")[2:])  # spineaug.transforms.<family>
        out[name] = {"Name": name, "family": str(module), "mention": f"{name}|{cls.__name__}"}
    return out


def _presets() -> dict[str, dict[str, str]]:
    return {name: {"preset": name, "mention": name} for name in spineaug.presets()}


def _study_for(arm_path: str) -> str:
    """A bundled study whose ``arms`` names ``arm_path``."""
    for study in sorted(STUDIES.glob("*.yaml")):
        if re.search(rf"^arms:.*{re.escape(arm_path)}", study.read_text(), re.M):
            return study.stem
    raise AssertionError(f"no bundled study (spineaug/studies/*.yaml) trains the arm file {arm_path}")


def _arm_files() -> dict[str, dict[str, str]]:
    return {p.stem: {"arm": p.stem, "study": _study_for(f"studies/arms/{p.name}"), "mention": p.stem}
            for p in sorted((STUDIES / "arms").glob("*.yaml"))}  # fmt: skip


def _baseline_arms() -> dict[str, dict[str, str]]:
    from spineaug.harness.augment import BASELINE_ARMS

    return {name: {"mention": name} for name in BASELINE_ARMS}


def _libraries() -> dict[str, dict[str, str]]:
    from spineaug.baselines import LIBRARIES

    return {name: {"library": name, "mention": name} for name in LIBRARIES}


REGISTRIES: dict[str, Callable[[], dict[str, dict[str, str]]]] = {
    "Add a transform": _transforms,
    "Add a preset": _presets,
    "A spineaug arm": _arm_files,
    "An arm run by another library": _baseline_arms,
    "Add a baseline library": _libraries,
}
"""Guide section -> its registered items (name -> placeholder values, and under ``mention`` the names a file may
mention it by, ``|``-separated)."""


def _fill(template: str, values: dict[str, str]) -> Path:
    def one(m: re.Match) -> str:
        assert m[1] in values, f"CONTRIBUTING.md: unknown placeholder <{m[1]}> in {template}"
        return values[m[1]]

    return ROOT / re.sub(r"<(\w+)>", one, template)


def _mentions(path: Path, names: str) -> bool:
    """Whether ``path`` names one of ``names`` (``|``-separated) as a whole word."""
    text = path.read_text()
    return any(re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", text) for n in names.split("|"))


# ----------------------------------------------------------------------------------------------------- the tests


def test_the_guide_has_one_list_per_registry():
    assert sorted(_sections()) == sorted(REGISTRIES)


def _example_problems(section: Section) -> list[str]:
    items = REGISTRIES[section.title]()
    if section.example not in items:
        return [f"{section.title}: the example {section.example!r} is not registered ({sorted(items)})"]
    problems = []
    for entry in section.entries:
        path = _fill(entry.path, items[section.example])
        if not path.exists():
            problems.append(f"{section.title}: {entry.path} -> {path.relative_to(ROOT)} does not exist")
    return problems


@pytest.mark.parametrize("title", sorted(REGISTRIES))
def test_the_example_is_registered_and_every_path_exists_for_it(title):
    problems = _example_problems(_sections()[title])
    assert not problems, f"CONTRIBUTING.md is stale: {problems}"


@pytest.mark.parametrize("title", sorted(REGISTRIES))
def test_every_registered_item_is_where_an_all_path_says(title):
    section = _sections()[title]
    items = REGISTRIES[title]()
    assert items, title
    for entry in (e for e in section.entries if e.every):
        for name, values in items.items():
            path = _fill(entry.path, values)
            where = f"CONTRIBUTING.md, {title}: {entry.path} (all)"
            assert path.is_file(), f"{where}: {path.relative_to(ROOT)} does not exist for {name!r}"
            if "<" not in entry.path:
                assert _mentions(path, values["mention"]), f"{where}: {path.relative_to(ROOT)} does not name {name!r}"


def test_every_other_path_in_the_guide_exists():
    """Paths in the prose (``spineaug/_sampling.py``...) too; paths with placeholders are checked above."""
    text = GUIDE.read_text()
    paths = {p for p in re.findall(r"`([^`\s]+)`", text)
             if re.search(r"[\w-]/|\.(py|md|json|yaml|toml)$", p) and "<" not in p}  # fmt: skip
    assert paths
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"CONTRIBUTING.md names paths that do not exist: {missing}"


def test_the_presets_folder_is_the_preset_registry():
    folder = sorted(p.stem for p in (ROOT / "spineaug" / "presets").glob("*.json"))
    assert folder == spineaug.presets()


def test_every_transform_is_registered_from_its_family_module():
    """What the transform list's steps 2 and 3 say: the class lives in ``spineaug/transforms/<family>.py``, which
    imports ``spineaug.functional``, and ``spineaug/transforms/__init__.py`` lists it in ``_CLASSES``."""
    registry = (ROOT / "spineaug" / "transforms" / "__init__.py").read_text()
    classes = re.search(r"_CLASSES[^=]*= \[(.*?)\]", registry, re.S)
    assert classes
    for name, cls in spineaug.TRANSFORMS.items():
        module = ROOT / Path(*cls.__module__.split(".")).with_suffix(".py")
        assert f'name = "{name}"' in module.read_text(), f"{module.relative_to(ROOT)} does not set name = {name!r}"
        assert "spineaug.functional" in module.read_text(), f"{module.relative_to(ROOT)} imports no functional op"
        assert re.search(rf"\b{cls.__name__}\b", classes[1]), f"{cls.__name__} is not in _CLASSES"


def test_a_renamed_file_makes_the_guide_stale():
    """The checks catch a list that names a file that is gone (here: the guide renames the transform registry)."""
    stale = GUIDE.read_text().replace("`spineaug/transforms/__init__.py`", "`spineaug/transforms/registry.py`")
    problems = _example_problems(_sections(stale)["Add a transform"])
    assert problems == ["Add a transform: spineaug/transforms/registry.py -> spineaug/transforms/registry.py does "
                        "not exist"]  # fmt: skip
