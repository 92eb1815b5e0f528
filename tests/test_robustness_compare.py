"""benchmarks/bench_robustness.py: the --compare report and the rule it states (no training)."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture()
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import bench_robustness

    return bench_robustness


def _write(path, rows):
    fields = ["scene", "method", "seed", "rmse", "sad", "seconds", "labels"]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for scene, seed, rmse in rows:
            writer.writerow(dict(scene=scene, method="egu-pw", seed=seed, rmse=rmse, sad=1.0, seconds=1.0, labels="x"))


def test_compare_reports_medians_over_common_seeds_and_the_verdict(bench, tmp_path, capsys):
    before, after, extra = tmp_path / "b.csv", tmp_path / "a.csv", tmp_path / "more.csv"
    _write(before, [("p3-20db", 0, 0.15), ("p3-20db", 1, 0.14), ("p6-40db", 0, 0.10), ("samson", 0, 0.05)])
    _write(after, [("p3-20db", 0, 0.03), ("p3-20db", 1, 0.02), ("p3-20db", 2, 0.5), ("samson", 0, 0.30)])
    _write(extra, [("p6-40db", 0, 0.104)])
    bench.main(["--compare", str(before), f"{after},{extra}"])
    out = capsys.readouterr().out
    # seed 2 is only in "after": left out; p3 medians 0.145 -> 0.025
    assert "| p3-20db | 0 1 | 0.1450 (14.50) | 0.0250 (2.50) | -0.1200 |" in out
    assert "| p6-40db | 0 | 0.1000 (10.00) | 0.1040 (10.40) | +0.0040 |" in out
    # a dataset is reported but outside the suite's median and the rule
    assert "| samson | 0 |" in out
    assert "median over 2 scenes" in out
    assert "rule (median improves, no scene worse by more than 0.005): met; worst change +0.0040" in out
    assert "mean over the 2 scenes 0.1225 -> 0.0645; scenes better / worse / within 0.0001: 1 / 1 / 0" in out


def test_compare_reports_the_seed_spreads_over_the_common_seeds(bench, tmp_path, capsys):
    before, after = tmp_path / "b.csv", tmp_path / "a.csv"
    _write(before, [("p3-20db", 0, 0.10), ("p3-20db", 1, 0.14), ("p6-40db", 0, 0.05), ("p6-40db", 1, 0.06)])
    # p3 narrows from 0.04 to 0.01; p6 widens from 0.01 to 0.03; seed 2 is not in "before": left out
    _write(after, [("p3-20db", 0, 0.11), ("p3-20db", 1, 0.12), ("p6-40db", 0, 0.05), ("p6-40db", 1, 0.08)])
    with open(after, "a", newline="") as fh:
        fh.write("p3-20db,egu-pw,2,0.9,1.0,1.0,x\n")
    bench.main(["--compare", str(before), str(after)])
    out = capsys.readouterr().out
    assert (
        "seed spread (max - min over the seeds) over the 2 scenes: median 0.0250 -> 0.0200, "
        "mean 0.0250 -> 0.0200; narrower / wider / within 0.0001: 1 / 1 / 0"
    ) in out


def test_compare_says_when_the_rule_fails(bench, tmp_path, capsys):
    before, after = tmp_path / "b.csv", tmp_path / "a.csv"
    _write(before, [("p3-20db", 0, 0.15), ("p6-40db", 0, 0.10)])
    _write(after, [("p3-20db", 0, 0.03), ("p6-40db", 0, 0.11)])
    bench.main(["--compare", str(before), str(after)])
    assert "NOT met; worst change +0.0100" in capsys.readouterr().out


def test_bundles_option_is_json(bench):
    assert sys.modules["bench_robustness"] is bench
    with pytest.raises(SystemExit):
        bench.main(["--bundles", "{not json", "--scenes", "p3-20db"])


def test_report_prints_the_tables_of_merged_files_with_missing_cells_marked(bench, tmp_path, capsys):
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    _write(first, [("p3-20db", 0, 0.03), ("p3-20db", 1, 0.05), ("p3-20db", 2, 0.04), ("p6-40db", 0, 0.10)])
    with open(second, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["scene", "method", "seed", "rmse", "sad", "seconds", "labels"])
        writer.writeheader()
        writer.writerow(dict(scene="p3-20db", method="vca-fcls", seed=0, rmse=0.2, sad=3.0, seconds=0.1, labels=""))
    bench.main(["--report", f"{first},{second}"])
    out = capsys.readouterr().out
    assert "| scene | vca-fcls | egu-pw |" in out  # the suite's method order, not the files'
    assert "| p3-20db | 0.2000 (20.00) | 0.0400 (4.00) |" in out  # median over the three seeds
    assert "| p6-40db | – | 0.1000 (10.00) |" in out  # no vca-fcls run on p6-40db
    assert "| p3-20db | 3.00 | 1.00 |" in out  # the SAD table
    assert "| **median over scenes** | **–** | **0.0700 (7.00)** |" in out  # no suite median over a gap


def test_report_lists_the_suite_scenes_first_and_keeps_the_datasets_out_of_the_median(bench, tmp_path, capsys):
    path = tmp_path / "r.csv"
    _write(path, [("samson", 0, 0.9), ("p6-40db", 0, 0.02), ("p3-20db", 0, 0.04)])
    bench.main(["--report", str(path)])
    out = capsys.readouterr().out.split("mean SAD")[0]
    rows = [line.split(" | ")[0] for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows == ["| scene", "| p6-40db", "| p3-20db", "| samson", "| **median over scenes**"]
    assert "| **median over scenes** | **0.0300 (3.00)** |" in out


def test_per_material_scaling_varies_each_material_of_each_pixel_on_its_own(monkeypatch):
    from egu_widgets.cube.download import fetch
    from egu_widgets.errors import DatasetError

    try:
        fetch("usgs/USGS_1995_Library.mat", download=False)
    except DatasetError as exc:
        pytest.skip(f"the USGS library is not available here: {exc}")
    monkeypatch.syspath_prepend(str(BENCH))
    import robustness_scenes as rs

    recipe = rs.Recipe(p=3, snr_db=200.0, height=12, width=10, n_bands=40, material_scaling=0.3)
    monkeypatch.setitem(rs.RECIPES, "tiny-elmm", recipe)
    cube = rs.make_scene("tiny-elmm", seed=0)
    y = cube.pixels.astype(np.float64)
    ab = cube.true_abundance_pixels
    em = np.asarray(cube.true_endmembers, dtype=np.float64)
    np.testing.assert_allclose(ab.sum(axis=1), 1.0, atol=1e-9)
    # Each pixel is a non-negative combination of the materials whose weights are ab × ψ, with ψ
    # in [0.7, 1.3] drawn per material: recover them by least squares (no noise at 200 dB).
    weights = np.linalg.lstsq(em.T, y.T, rcond=None)[0].T
    present = ab > 0.05  # where a material is nearly absent its factor is not measurable
    psi = np.where(present, weights / np.where(present, ab, 1.0), np.nan)
    assert np.nanmin(psi) > 0.7 - 1e-2 and np.nanmax(psi) < 1.3 + 1e-2
    # Not one factor per pixel: within a pixel the materials' factors differ.
    both = present.sum(axis=1) >= 2
    assert np.nanstd(psi[both], axis=1).mean() > 0.05
