"""``reproduce()`` and ``egu-widgets reproduce``: the paper comparison's table, figures and results."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from egu_widgets import UnmixingResult
from egu_widgets.cli import main
from egu_widgets.cube import HyperCube
from egu_widgets.errors import DataFileError, DatasetError, InputError
from egu_widgets.figure_data import network_graph
from egu_widgets.reproduce import (
    DATASETS,
    METHOD_LABELS,
    METHODS,
    best_window,
    engine_model,
    plan_for,
    reproduce,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NEEDED_FILES = [
    "samson/samson_1.mat",
    "samson/end3.mat",
    "jasper_ridge/jasperRidge2_R198.mat",
    "jasper_ridge/end4.mat",
    "usgs/USGS_1995_Library.mat",
    "egu_net_synthetic/TeLabel.mat",
]


def _require_data():
    from egu_widgets.cube.download import fetch

    try:
        for rel in NEEDED_FILES:
            fetch(rel, download=False)
    except DatasetError as exc:
        pytest.skip(f"the real datasets are not available here: {exc}")


# The fast mode with smaller crops and fewer epochs: every dataset, method, seed, figure and file
# of a fast run, at a fraction of its training time (the fast mode's own settings are checked in
# test_plans_and_their_validation, and notebook 04 runs it whole).
FAST_CROP, FAST_EPOCHS = 16, 3


@pytest.fixture(scope="module")
def fast_run(tmp_path_factory):
    _require_data()
    out = tmp_path_factory.mktemp("reproduce") / "fast"
    lines: list[str] = []
    report = reproduce(out, fast=True, crop=FAST_CROP, epochs=FAST_EPOCHS, log=lines.append)
    return out, report, lines


def _copy_of(fast_run, out: Path) -> Path:
    """A copy of the module's finished reproduction at ``out`` (an earlier run to replace)."""
    shutil.copytree(fast_run[0], out)
    return out


def _csv_rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# ------------------------------------------------------------------------------------- fast run
def test_fast_table_has_every_method_and_dataset(fast_run):
    out, report, _ = fast_run
    rows = _csv_rows(out / "table.csv")
    for ds in DATASETS:
        for method in METHODS:
            mine = [r for r in rows if r["dataset"] == ds and r["method"] == method]
            assert mine, f"table.csv has no rows for {ds} / {method}"
            overall = [r for r in mine if r["metric"] == "rmse" and r["material"] == "all"]
            assert len(overall) == 1
            row = overall[0]
            assert int(row["n_seeds"]) == 2 and row["seeds"] == "0;1"
            values = [float(v) for v in row["values"].split(";")]
            assert all(0.0 <= v <= 1.0 for v in values), values
            assert float(row["min"]) <= float(row["median"]) <= float(row["max"])
            assert math.isclose(float(row["median"]), float(np.median(values)), rel_tol=1e-5)
            per_material = [r for r in mine if r["metric"] == "rmse" and r["material"] != "all"]
            assert len(per_material) == {"egu-synthetic": 5, "samson": 3, "jasper-ridge": 4}[ds]
            sad = [r for r in mine if r["metric"] == "sad_deg"]
            assert len(sad) == 1 and 0.0 <= float(sad[0]["median"]) <= 90.0

    md = (out / "table.md").read_text()
    assert md == report.table_markdown
    assert "FAST MODE" in md.splitlines()[0]
    assert f"{FAST_CROP}×{FAST_CROP} crops" in md and f"{FAST_EPOCHS} epochs" in md and "seeds 0, 1" in md
    assert report.plan == plan_for(True, crop=FAST_CROP, epochs=FAST_EPOCHS)
    sections = md.split("\n## ")[1:]
    assert [s.split(" ", 1)[0] for s in sections] == list(DATASETS)
    for section in sections:
        table_lines = [ln for ln in section.splitlines() if ln.startswith("| ")][1:]
        assert [ln.split(" | ")[0][2:].rstrip(" †") for ln in table_lines] == [METHOD_LABELS[m] for m in METHODS]


def test_fast_run_writes_every_figure_as_png(fast_run):
    out, report, _ = fast_run
    expected = [f"{kind}-{ds}.png" for ds in DATASETS for kind in ("abundances", "endmembers", "training")]
    expected += ["network-egu-pw.png", "network-egu-ss.png", "summary.png"]
    for name in expected:
        path = out / name
        assert path.is_file(), f"{name} is missing"
        data = path.read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 10_000, f"{name} is not a drawn PNG ({len(data)} bytes)"
    assert sorted(p.name for p in report.figures) == sorted(expected)


def test_fast_run_saves_every_result_and_they_match_the_table(fast_run):
    out, report, _ = fast_run
    rows = {
        (r["dataset"], r["method"]): r
        for r in _csv_rows(out / "table.csv")
        if r["metric"] == "rmse" and r["material"] == "all"
    }
    for ds in DATASETS:
        for method in METHODS:
            stored = []
            for seed in (0, 1):
                res = UnmixingResult.open(out / "results" / ds / f"{method}-seed{seed}.nc")
                assert res.method == method
                assert res.abundances.sizes["y"] == res.abundances.sizes["x"] == FAST_CROP
                stored.append(res.rmse)
            table_values = [float(v) for v in rows[(ds, method)]["values"].split(";")]
            np.testing.assert_allclose(stored, table_values, rtol=1e-5)
    engine = UnmixingResult.open(out / "results" / "samson" / "egu-pw-seed0.nc")
    assert len(engine.history["loss_total"]) == FAST_EPOCHS  # the plan's epochs, recorded with the result


def test_fast_run_manifest_lists_exactly_the_files_written(fast_run):
    out, report, _ = fast_run
    manifest = json.loads((out / "manifest.json").read_text())
    on_disk = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert sorted(manifest["files"]) == on_disk
    assert manifest["plan"]["mode"] == "fast" and manifest["info"]["total_seconds"] > 0
    assert len(manifest["runs"]) == len(DATASETS) * len(METHODS) * 2
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(".fast.")]
    assert not leftovers, f"staging folders left behind: {leftovers}"


def test_a_finished_reproduction_can_be_opened_again(fast_run):
    from egu_widgets.reproduce import ReproduceReport

    out, report, _ = fast_run
    again = ReproduceReport.open(out)
    assert again.plan == report.plan
    assert again.table_markdown == report.table_markdown
    assert [(r.dataset, r.method, r.seed, r.rmse) for r in again.runs] == [
        (r.dataset, r.method, r.seed, r.rmse) for r in report.runs
    ]
    assert again.result("samson", "egu-pw", 1).rmse == pytest.approx(
        next(r.rmse for r in report.runs if (r.dataset, r.method, r.seed) == ("samson", "egu-pw", 1))
    )
    with pytest.raises(DataFileError, match="no finished reproduction"):
        ReproduceReport.open(out / "results")


def test_fast_run_logs_each_run(fast_run):
    _, _, lines = fast_run
    assert lines[0].startswith("reproduce (fast mode)")
    assert sum(1 for ln in lines if ln.startswith("[")) == len(DATASETS) * len(METHODS) * 2
    assert lines[-1].startswith("wrote ")


# ------------------------------------------------------------------------------------- atomicity
def _tiny(out, **kw):
    return reproduce(
        out, fast=True, datasets=["samson"], methods=["vca-fcls", "sunsal"], seeds=[0], crop=16, log=None, **kw
    )


def test_an_interrupted_run_leaves_the_previous_reproduction_untouched(fast_run, tmp_path, monkeypatch):
    out = _copy_of(fast_run, tmp_path / "rep")
    before = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert "table.md" in before

    import egu_widgets.reproduce.run as rp

    calls = {"n": 0}
    real = rp._run_one

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(rp, "_run_one", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _tiny(out)
    assert calls["n"] == 2
    after = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"], "a staging folder was left behind"


def _partial_engine(monkeypatch, reason):
    """Make every engine run return a result that training ended early, for ``reason``."""
    import egu_widgets.unmixing as um

    real = um.unmix

    def fake(cube, method="egu-pw", *args, **kwargs):
        if method not in ("ae", "egu-pw", "egu-ss"):
            return real(cube, method, *args, **kwargs)
        res = real(cube, "vca-fcls", seed=kwargs.get("seed", 0))
        res.ds.attrs.update(method=method, partial=1, stop_reason=reason)
        return res

    monkeypatch.setattr(um, "unmix", fake)


def test_a_training_interrupted_inside_the_engine_aborts_the_reproduction(tmp_path, monkeypatch):
    # The engine turns Ctrl-C into a partial result instead of raising; reproduce must not table it.
    _require_data()
    _partial_engine(monkeypatch, "interrupted (KeyboardInterrupt) after 3 of 20 epochs")
    with pytest.raises(KeyboardInterrupt):
        reproduce(
            tmp_path / "rep", fast=True, datasets=["samson"], methods=["vca-fcls", "ae"], seeds=[0], crop=16, log=None
        )
    assert list(tmp_path.iterdir()) == []


def test_a_diverged_training_is_kept_and_marked(tmp_path, monkeypatch):
    _require_data()
    reason = "the loss became NaN or infinite during epoch 4 (step 4); the model from the end of epoch 3 was kept"
    _partial_engine(monkeypatch, reason)
    report = reproduce(
        tmp_path / "rep", fast=True, datasets=["samson"], methods=["vca-fcls", "ae"], seeds=[0], crop=16, log=None
    )
    assert "| AE ablation (no bundles) † |" in report.table_markdown
    assert f"† ae seed 0: {reason}" in report.table_markdown
    assert "| FCLS (VCA endmembers) |" in report.table_markdown


def test_a_new_run_replaces_an_earlier_reproduction(fast_run, tmp_path):
    out = _copy_of(fast_run, tmp_path / "rep")
    (out / "stale.txt").write_text("from an older run")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["files"].append("stale.txt")  # still recognised as a reproduction folder
    (out / "manifest.json").write_text(json.dumps(manifest))
    report = _tiny(out)
    assert not (out / "stale.txt").exists()
    assert not (out / "results" / "jasper-ridge").exists()  # nothing of the earlier run is left
    assert (out / "table.md").read_text() == report.table_markdown
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


def test_refuses_to_replace_a_folder_that_is_not_a_reproduction(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(DataFileError, match="not an earlier reproduction"):
        reproduce(out, fast=True, log=None)
    assert (out / "thesis.tex").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_published_files_are_not_private(fast_run):
    out = fast_run[0]
    umask = os.umask(0)
    os.umask(umask)
    assert (out.stat().st_mode & 0o777) == 0o777 & ~umask
    assert ((out / "results" / "samson" / "vca-fcls-seed0.nc").stat().st_mode & 0o777) == 0o666 & ~umask


# ------------------------------------------------------------------------------------- plan
def test_plans_and_their_validation():
    fast, full = plan_for(True), plan_for(False)
    assert (fast.crop, fast.epochs, fast.seeds, fast.threads) == (32, 20, (0, 1), 1)
    assert (full.crop, full.epochs, full.seeds, full.threads) == (None, None, (0, 1, 2), None)
    assert (fast.ss_epochs, full.ss_epochs) == (None, None)
    assert (fast.epochs_for("egu-ss"), full.epochs_for("egu-ss"), full.epochs_for("egu-pw")) == (20, None, None)
    assert "the engine's default epochs (until converged, at most 200)" in full.describe()
    shorter_ss = plan_for(False, ss_epochs=20)
    assert (
        "20 epochs for egu-ss" in shorter_ss.describe()
        and "(until converged, at most 200) for ae, egu-pw" in shorter_ss.describe()
    )
    assert fast.datasets == DATASETS and fast.methods == METHODS
    custom = plan_for(False, datasets=["samson", "egu-synthetic"], methods=["egu-ss", "vca-fcls"], seeds=[3], crop=None)
    assert custom.datasets == ("egu-synthetic", "samson") and custom.methods == ("vca-fcls", "egu-ss")
    for bad in (
        dict(datasets=["indian-pines"]),
        dict(methods=["nmf"]),
        dict(seeds=[0, 0]),
        dict(seeds=[]),
        dict(crop=4),
        dict(epochs=0),
        dict(threads=0),
        dict(methods=[]),
        dict(ss_epochs=0),
    ):
        with pytest.raises(InputError):
            plan_for(True, **bad)


def test_best_window_keeps_a_material_found_only_in_one_corner():
    h = w = 40
    ab = np.zeros((3, h, w))
    ab[0] = 0.6
    ab[1] = 0.4
    ab[:, 30:, 30:] = 0.0
    ab[2, 30:, 30:] = 1.0  # material 3 lives only in the bottom-right corner
    em = np.array([np.linspace(0.2, 0.8, 10), np.linspace(0.8, 0.2, 10), np.full(10, 0.5)])
    cube = HyperCube.from_array(np.einsum("phw,pb->hwb", ab, em), endmembers=em, abundances=ab)
    y0, x0 = best_window(cube, 16)
    window = ab[:, y0 : y0 + 16, x0 : x0 + 16]
    assert window[2].mean() > 0.2 and window[0].mean() > 0.2, (y0, x0)
    assert best_window(cube, 40) == (0, 0)


# ------------------------------------------------------------------------------------- network diagram
def test_network_graph_of_pw_shares_the_whole_encoder_and_nothing_else():
    model = engine_model("pw", 20, 3)
    g = network_graph(model)
    assert g.order["endmember"] == ["encoder.fc1", "encoder.fc2", "encoder.fc3", "encoder.fc4"]
    assert g.order["unmixing"][:4] == g.order["endmember"] and len(g.order["unmixing"]) == 8
    for key in g.order["endmember"]:
        assert g.boxes[key].shared
    for key in g.order["unmixing"][4:]:
        assert g.boxes[key].streams == {"unmixing"} and key.startswith("decoder.")
    assert g.boxes["encoder.fc1"].lines[0] == "linear 20→256"
    assert "tanh" in g.boxes["encoder.fc1"].lines[1] and "dropout 0.1" in g.boxes["encoder.fc1"].lines[1]
    assert "softmax" in g.boxes["encoder.fc4"].lines[1]
    assert g.n_params == sum(p.numel() for p in model.parameters())
    assert g.n_shared_params == sum(p.numel() for p in model.encoder.parameters())


def test_network_graph_of_ss_finds_the_weight_shared_as_a_convolution():
    model = engine_model("ss", 20, 3)
    g = network_graph(model, image_side=12)  # not a multiple of 8: the model pads and crops
    shared = [k for k, b in g.boxes.items() if b.shared]
    assert shared == ["encoder.fc3"]
    assert any("1×1 convolution" in line for line in g.boxes["encoder.fc3"].lines)
    assert g.order["unmixing"][:3] == ["conv1", "conv2", "encoder.fc3"]
    assert g.order["unmixing"][3] == "up"
    assert g.n_shared_params == sum(p.numel() for p in model.encoder.fc3.parameters()) + sum(
        p.numel() for p in model.encoder.bn3.parameters()
    )
    # tracing leaves the model as it was
    before = {k: v.clone() for k, v in model.state_dict().items()}
    network_graph(model)
    assert all((before[k] == v).all() for k, v in model.state_dict().items())


# ------------------------------------------------------------------------------------- command line
def test_cli_reproduce_prints_the_table(tmp_path, capsys):
    _require_data()
    out = tmp_path / "cli"
    rc = main(
        [
            "reproduce",
            "--out",
            str(out),
            "--fast",
            "--datasets",
            "samson",
            "--methods",
            "vca-fcls,sunsal",
            "--seeds",
            "0",
            "--crop",
            "16",
            "--quiet",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert printed.strip() == (out / "table.md").read_text().strip()
    assert "| FCLS (VCA endmembers) |" in printed and "| SUnSAL (VCA endmembers) |" in printed


def test_cli_reproduce_reports_bad_input_on_one_line(tmp_path, capsys):
    rc = main(["reproduce", "--out", str(tmp_path / "x"), "--fast", "--datasets", "indian-pines"])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_cli_reproduce_help_names_every_comparison_method(capsys):
    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    # argparse wraps the help at hyphens ("nfindr-\n fcls"): join those back first.
    help_text = re.sub(r"-\s+", "-", " ".join(capsys.readouterr().out.split()))
    listed = help_text.split("comma-separated subset of ")[2].split()[0]
    assert listed.split(",") == list(METHODS)
