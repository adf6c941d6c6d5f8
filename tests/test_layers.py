"""The engine's layering (README, Layout): lower layers never import higher ones, so there is no import cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "spineaug"

# module (file or package folder under spineaug/) -> spineaug modules it may import
ALLOWED = {
    "functional": {"functional"},
    "_sampling": {"functional"},
    "batch": set(),
    "validation": set(),
    "transforms": {"functional", "_sampling", "batch", "validation", "transforms"},
    "config": {"transforms", "validation"},
    "pipeline": {"transforms", "config", "validation", "batch"},
}


def _spineaug_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "spineaug" and len(parts) > 1:
                found.add(parts[1])
    return found & (set(ALLOWED) | {p.stem for p in ROOT.iterdir()} | {p.name for p in ROOT.iterdir()})


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layers_import_only_lower_layers(layer):
    files = sorted((ROOT / layer).rglob("*.py")) if (ROOT / layer).is_dir() else [ROOT / f"{layer}.py"]
    assert files
    for path in files:
        extra = _spineaug_imports(path) - ALLOWED[layer]
        assert not extra, f"{path.relative_to(ROOT.parent)} imports {sorted(extra)}"


def test_pipeline_knows_no_geometry_internals():
    import re

    text = (ROOT / "pipeline.py").read_text()
    for pattern in (r"isinstance\(.*RandomSpatial", r"\bPlacement\b", r"\bresample\b", r"_resample"):
        assert not re.search(pattern, text), pattern


def test_random_draws_go_through_sampling():
    """Transforms draw only through spineaug._sampling (explicit CPU generator), never torch's own samplers."""
    import re

    paths = [*sorted((ROOT / "transforms").glob("*.py")), ROOT / "pipeline.py", ROOT / "config.py"]
    for path in paths:
        text = "\n".join(line for line in path.read_text().splitlines() if ">>>" not in line)  # not examples
        assert not re.search(r"torch\.(rand|randn|randint|randperm|normal|bernoulli|multinomial)\(", text), path.name


def test_alias_f_means_torch_nn_functional_only():
    import re

    for path in sorted(ROOT.rglob("*.py")):
        for module in re.findall(r"^\s*(?:import (\S+)|from (\S+) import \S+) as F$", path.read_text(), re.M):
            name = module[0] or module[1]
            assert name in ("torch.nn.functional", "torch.nn"), f"{path.relative_to(ROOT.parent)}: {name} as F"
