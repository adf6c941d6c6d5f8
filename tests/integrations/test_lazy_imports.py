"""Optional stacks stay optional: spineaug and its presets import none of them; a missing one names its extra."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STACKS = ("monai", "torchio", "nnunetv2", "batchgeneratorsv2", "kornia")


def _python(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_core_and_nnunet_installer_import_no_optional_stack():
    code = (
        "import sys, torch, spineaug\n"
        "import spineaug.integrations, spineaug.integrations.nnunet\n"
        "for name in spineaug.presets():\n"
        "    spineaug.Pipeline.from_preset(name)(torch.randn(1, 1, 8, 8, 8), torch.zeros(1, 1, 8, 8, 8, dtype=torch.long))\n"
        f"print(sorted(m for m in {STACKS!r} if m in sys.modules))\n"
    )
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("module", "stack", "extra"),
    [("spineaug.integrations.monai", "monai", "monai"), ("spineaug.integrations.torchio", "torchio", "torchio"),
     ("spineaug.integrations.nnunet.trainers", "nnunetv2", "nnunet")],  # fmt: skip
)
def test_missing_stack_names_the_extra(module, stack, extra):
    proc = _python(f"import sys; sys.modules[{stack!r}] = None\nimport {module}")
    assert proc.returncode != 0
    assert f"pip install -e '.[{extra}]'" in proc.stderr and "spineaug[" not in proc.stderr
