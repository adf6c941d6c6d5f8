"""`studies/quick.yaml` end to end through the CLI, then the study report (slow: a few minutes, run by CI)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from spineaug import study as S
from spineaug.cli import main
from spineaug.study.data import load_split
from spineaug.study.evaluate import METRIC_COLUMNS, case_metrics
from spineaug.study.summary import SUMMARY_COLUMNS
from spineaug.study.train import build_model, predict_volume

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_study_end_to_end(tmp_path):
    cfg = S.load_study(ROOT / "studies" / "quick.yaml").model_copy(
        update={"data": S.load_study(ROOT / "studies" / "quick.yaml").data.model_copy(
            update={"cache": str(tmp_path / "cache")})}
    )  # fmt: skip
    spec = tmp_path / "quick.json"
    spec.write_text(cfg.model_dump_json())
    assert main(["study", str(spec), "--out", str(tmp_path / "res"), "--quiet", "--export", str(tmp_path / "data")]) == 0
    out = tmp_path / "res" / "quick"
    metrics = pd.read_csv(out / "metrics.csv")
    assert tuple(metrics.columns) == METRIC_COLUMNS
    assert metrics["dice"].between(0, 1).all()
    assert set(metrics["domain"]) == set(cfg.target_domains())
    assert set(metrics["arm"]) == set(cfg.arms)
    summary = pd.read_csv(out / "summary.csv")
    assert tuple(summary.columns) == SUMMARY_COLUMNS
    for cell in S.cells(cfg):
        folder = out / "cells" / cell.slug
        for name in ("model.pt", "train_log.csv", "metrics.csv", "augmentation.json", "cell.json"):
            assert (folder / name).is_file(), name
        assert list((folder / "predictions").rglob("*.nii.gz"))
    # the trained in-domain model is clearly better than an untrained network on the same test cases
    trained = metrics[(metrics["arm"] == "none") & (metrics["domain"] == "t2w")]["dice"].mean()
    torch.manual_seed(0)
    untrained = build_model(cfg)
    scores = [d for s in load_split(cfg, "t2w", "test")
              for _, d, _ in case_metrics(predict_volume(untrained, torch.from_numpy(s.image), cfg, torch.device("cpu")),
                                          s.label, (2.0, 2.0, 2.0), hd95=False)]  # fmt: skip
    assert trained > float(np.mean(scores)) + 0.2, (trained, scores)
    # compact export + report page
    data = tmp_path / "data" / "quick"
    for name in ("study.json", "metrics.csv", "curves.csv", "summary.csv", "summary.md"):
        assert (data / name).is_file()
    assert main(["report", "--results", str(tmp_path / "nothing"), "--study-data", str(tmp_path / "data"),
                 "--out", str(tmp_path / "reports")]) == 0  # fmt: skip
    page = (tmp_path / "reports" / "study.md").read_text()
    assert "Study `quick`" in page and "| t2w | xdomain |" in page
    assert (tmp_path / "reports" / "study_quick_heatmap.png").stat().st_size > 1000
    assert (tmp_path / "reports" / "study_quick_curves.png").stat().st_size > 1000
