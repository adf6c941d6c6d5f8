"""The plain-PyTorch and nnU-Net examples beside examples/monai_train.py (its test: tests/integrations/test_monai.py)."""

from __future__ import annotations

import importlib.util
import math
import re
import shlex
import subprocess
from pathlib import Path

from spineaug import cli

ROOT = Path(__file__).resolve().parents[1]


def test_plain_pytorch_example_trains(capsys):
    spec = importlib.util.spec_from_file_location("torch_train", ROOT / "examples" / "torch_train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    losses = module.main(["--iterations", "3", "--patch", "16"])
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    assert "3 iterations on" in capsys.readouterr().out


def test_nnunet_example_script_is_valid():
    """The script parses, and every spineaug command in it is accepted by the command line as written (the nnU-Net
    run itself is the slow test in tests/integrations/test_nnunet.py, with the same steps)."""
    script = ROOT / "examples" / "nnunet_train.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    commands = [line.split("#")[0] for line in script.read_text().splitlines() if line.startswith("spineaug ")]
    assert len(commands) == 2
    parser = cli.build_parser()
    for line in commands:
        words = [re.sub(r"^\$\{?\w+\}?.*|^\".*\"$", "X", w) for w in shlex.split(line, posix=False)[1:]]
        parser.parse_args(words)
    for step in ("nnUNetv2_plan_and_preprocess", "nnUNetv2_train", "nnUNetv2_predict", "nnUNet_extTrainer"):
        assert step in script.read_text()
