"""The engine's layering (README, Layout): lower layers never import higher ones, so there is no import cycle."""

from __future__ import annotations

import ast
import re
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


# ---------------------------------------------------------------------------------------------- upper floors

REPORT_ALLOWED_SPINEAUG = {"spineaug._schema", "spineaug._io", "spineaug.report"}
"""The report renders result files only: of spineaug it imports the file schema, the file helpers and itself."""
REPORT_ALLOWED_THIRD_PARTY = {"numpy", "pandas", "matplotlib", "mpl_toolkits"}


def _imports(path: Path) -> set[str]:
    """Every module an import statement in ``path`` names (``from a.b import c`` gives ``a.b`` and ``a.b.c``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def _is_stdlib(name: str) -> bool:
    import sys

    return name.split(".")[0] in sys.stdlib_module_names or name == "__future__"


def test_report_imports_only_schema_io_and_itself():
    files = sorted((ROOT / "report").rglob("*.py"))
    assert files
    for path in files:
        for name in _imports(path):
            top = name.split(".")[0]
            if top == "spineaug":
                if name == "spineaug":  # ``from spineaug import _io, _schema`` names the package, then each module
                    assert not re.search(r"^\s*import spineaug\b", path.read_text(), re.M), path
                    continue
                ok = any(name == a or name.startswith(a + ".") for a in REPORT_ALLOWED_SPINEAUG)
                assert ok, f"{path.relative_to(ROOT.parent)} imports {name}"
            else:
                assert _is_stdlib(name) or top in REPORT_ALLOWED_THIRD_PARTY, \
                    f"{path.relative_to(ROOT.parent)} imports {name} (the report renders, it does not run libraries)"


@pytest.mark.parametrize(("layer", "forbidden"), [
    ("bench", {"study", "report", "cli"}),  # bench and study share spineaug.harness instead
    ("study", {"bench", "report", "cli"}),
    ("harness", {"study", "bench", "report", "cli"}),
    ("fidelity", {"study", "bench", "report", "cli"}),
    ("preview", {"study", "bench", "report", "cli"}),
])
def test_upper_floors_do_not_import_each_other(layer, forbidden):
    for path in sorted((ROOT / layer).rglob("*.py")):
        bad = {n for n in _imports(path) if n.split(".")[0] == "spineaug" and len(n.split(".")) > 1
               and n.split(".")[1] in forbidden}
        assert not bad, f"{path.relative_to(ROOT.parent)} imports {sorted(bad)}"


def test_no_module_imports_another_packages_private_module():
    """``spineaug.<pkg>._name`` is private to ``<pkg>``; top-level ``spineaug._name`` modules are shared by design."""
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        own = rel.parts[0] if len(rel.parts) > 1 else None
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] != "spineaug" or len(parts) < 3:
                continue
            private = [i for i, p in enumerate(parts[2:], start=2) if p.startswith("_") and not p.startswith("__")]
            if private and parts[1] != own:
                raise AssertionError(f"{rel} imports {name}, private to spineaug.{parts[1]}")


def test_one_training_harness():
    """The network, the loss and the training step have one owner, :mod:`spineaug.harness.train`, that the study and
    the training benchmark both call: no other module builds a MONAI network or the DiceCE loss, or steps an
    optimiser."""
    owner = ROOT / "harness" / "train.py"
    patterns = {
        "the loss": r"\bDiceCELoss\(", "a network": r"\b(?:Dyn)?UNet\(", "an optimiser": r"\boptim\.Adam\(",
        "a step": r"\.backward\(",
    }
    for what, pattern in patterns.items():
        owners = [p.relative_to(ROOT.parent) for p in sorted(ROOT.rglob("*.py"))
                  if re.search(pattern, p.read_text())]  # fmt: skip
        assert owners == [owner.relative_to(ROOT.parent)], f"{what} is built in {owners}"
    for user in ("study/train.py", "bench/training_loop.py"):
        assert "spineaug.harness.train" in _imports(ROOT / user), f"{user} does not use the shared harness"


# ---------------------------------------------------------------------------------------------- local imports

REASONS = ("# optional:", "# lazy:", "# cycle:")
"""Why an import sits inside a function: it keeps an optional stack optional, keeps ``import spineaug`` or a CLI
start light, or breaks an import cycle."""
UNSTATED = {"phantom/__init__.py"}
"""Files whose function-local imports do not say why yet (the phantom's writer imports ``spineaug.data`` on use)."""


def test_function_local_imports_say_why():
    """Imports go at the top of their module; one inside a function names its reason (:data:`REASONS`) on its line,
    on the line above, or on an earlier local import of the same function (a block of imports for one reason)."""
    for path in sorted(ROOT.rglob("*.py")):
        if str(path.relative_to(ROOT)) in UNSTATED:
            continue
        lines = path.read_text().splitlines()
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            stated = False
            local = [n for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))]
            for node in sorted(local, key=lambda n: n.lineno):
                around = lines[node.lineno - 2 : node.end_lineno]
                stated = stated or any(reason in line for line in around for reason in REASONS)
                assert stated, (f"{path.relative_to(ROOT.parent)}:{node.lineno}: a function-local import without "
                                f"its reason ({', '.join(REASONS)}); or move it to the top of the module")


def _floor(path: Path) -> str:
    """A module's floor: its folder under ``spineaug/`` (``study``, ``bench``…) or its own name for a top module."""
    rel = path.relative_to(ROOT)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _floor_graph() -> dict[str, set[str]]:
    """Floor -> the floors its module-level imports (incl. those under ``if``/``try``) name; no self edges."""
    graph: dict[str, set[str]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        floor = _floor(path)
        for top in ast.parse(path.read_text()).body:
            for node in ast.walk(top) if isinstance(top, (ast.If, ast.Try)) else [top]:
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = ([f"spineaug.{a.name}" for a in node.names] if node.module == "spineaug"
                             else [node.module])  # fmt: skip
                for name in names:
                    parts = name.split(".")
                    if parts[0] == "spineaug" and len(parts) > 1 and parts[1] != floor:
                        graph.setdefault(floor, set()).add(parts[1])
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return found


def test_the_floors_import_each_other_without_cycles():
    """Module-level imports between floors form no cycle (function-local ones are listed with their reason above)."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]  # the check finds one
    graph = _floor_graph()
    assert {"study", "bench", "harness", "report"} <= set(graph)  # the graph was read
    assert not _cycles(graph), _cycles(graph)
