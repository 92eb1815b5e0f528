"""The console bar and the stopping rule's progress: what the line says while a run converges."""

from __future__ import annotations

import io
import math
import re

import pytest

from egu_widgets.engine.events import TrainingEvent
from egu_widgets.engine.progress import ConsoleProgress, StoppingProgress, _change

RULE = {"tol": 0.005, "check_every": 10, "patience": 3, "min_epochs": 30}


def _frames(text: str) -> list[str]:
    return [f.strip() for f in re.split(r"[\r\n]", text) if f.strip()]


def _run(changes: dict, *, n_epochs=200, last=None, rule=RULE, final="end", info_stop=None, message=""):
    """Feed a ConsoleProgress a run: ``changes`` {epoch: change}; returns its frames."""
    out = io.StringIO()
    bar = ConsoleProgress(file=out, mininterval=0)
    bar.on_event(TrainingEvent("start", 0, n_epochs, 0.0, info={"method": "egu-pw", "stopping": rule}))
    last = max(changes) if last is None else last
    for epoch in range(1, last + 1):
        metrics = {"change": changes[epoch]} if epoch in changes else {}
        bar.on_event(
            TrainingEvent(
                "epoch",
                epoch,
                n_epochs,
                0.1 * epoch,
                losses={"total": 1.0 / epoch},
                learning_rate=0.01,
                metrics=metrics,
            )
        )
    final_metrics = {"change": changes[max(changes)]} if changes else {}
    info = {} if info_stop is None else {"stop": info_stop}
    bar.on_event(TrainingEvent(final, last, n_epochs, 0.1 * last, metrics=final_metrics, info=info, message=message))
    return _frames(out.getvalue())


# ---------------------------------------------------------------------------------- console line
def test_console_line_says_how_the_rule_stands_instead_of_an_epoch_bar():
    changes = {20: 0.05, 30: 0.0041, 40: 0.0042, 50: 0.0033}
    frames = _run(changes, last=52, info_stop="converged")
    at_37 = [f for f in frames if "epoch 37 of at most 200" in f]
    assert at_37, frames
    assert at_37[-1].startswith(
        "egu-pw converging: change 0.0041 (tol 0.005, 1/3 quiet checks) epoch 37 of at most 200 ["
    )
    assert "loss=" in at_37[-1] and "lr=0.01" in at_37[-1]
    assert any("change 0.0042 (tol 0.005, 2/3 quiet checks) epoch 45" in f for f in frames)
    # before the second check there is no change yet: the line says when the first one comes
    assert any(
        f.startswith("egu-pw converging: first change at epoch 20 (tol 0.005, a check every 10) epoch 5")
        for f in frames
    )
    assert not any("/200" in f or "%|" in f for f in frames), "an epoch bar over the bound was drawn"
    assert frames[-1].startswith("egu-pw converged at epoch 52 (change 0.0033, tol 0.005)")


def test_console_line_ends_with_the_bound_when_the_rule_never_fired():
    changes = {k: 0.02 for k in range(20, 201, 10)}
    frames = _run(changes, last=200, info_stop="bound")
    assert frames[-1].startswith("egu-pw reached the bound of 200 epochs (change 0.02, tol 0.005)")
    assert sum(f.startswith("egu-pw reached the bound") for f in frames) == 1  # the last line drawn once


def test_quiet_checks_reset_when_the_change_rises_and_wait_for_min_epochs():
    rule = dict(RULE, min_epochs=80)
    changes = {20: 0.004, 30: 0.009, 40: 0.001, 50: 0.002, 60: 0.003, 70: 0.001, 80: 0.001}
    frames = _run(changes, last=80, rule=rule, info_stop="converged")
    assert any("change 0.004 (tol 0.005, 1/3 quiet checks) epoch 25" in f for f in frames)
    assert any("change 0.009 (tol 0.005, 0/3 quiet checks) epoch 35" in f for f in frames)
    assert any("change 0.002 (tol 0.005, 2/3 quiet checks) epoch 55" in f for f in frames)
    # three quiet checks before min_epochs: the rule still waits, and the line says for what
    assert any("change 0.003 (tol 0.005, 3/3 quiet checks, waiting for epoch 80) epoch 65" in f for f in frames)
    assert any("change 0.001 (tol 0.005, 3/3 quiet checks, waiting for epoch 80) epoch 79" in f for f in frames)
    assert frames[-1].startswith("egu-pw converged at epoch 80 (change 0.001, tol 0.005)")


def test_stopped_and_failed_runs_with_a_rule():
    frames = _run({20: 0.03}, last=27, final="stop", message="stopped by a test")
    assert frames[-2].startswith("egu-pw stopped at epoch 27 (change 0.03, tol 0.005)")
    assert frames[-1] == "stop: stopped by a test"
    frames = _run({20: 0.03}, last=24, final="fail", message="training diverged: NaN")
    assert frames[-2].startswith("egu-pw failed at epoch 24 (change 0.03, tol 0.005)")
    assert frames[-1] == "fail: training diverged: NaN"


@pytest.mark.parametrize(
    "rule, n_epochs",
    [
        ({"tol": None, "check_every": 10, "patience": 3, "min_epochs": 0}, 3),  # preset="paper": no rule
        (dict(RULE, tol=0.0), 3),  # tol=0 never fires: the rule is off
        (RULE, 3),  # a bound shorter than the rule's first possible stop (30 epochs)
    ],
)
def test_runs_the_rule_cannot_end_keep_the_epoch_bar(rule, n_epochs):
    frames = _run({2: 0.01}, n_epochs=n_epochs, last=3, rule=rule, info_stop="bound")
    assert sum("3/3" in f for f in frames) == 1 and frames[-1].startswith("egu-pw: 100%"), frames
    assert not any("converging" in f or "bound" in f for f in frames)


# ---------------------------------------------------------------------------------- the rule's count
def _progress(rule=RULE, n_epochs=200) -> StoppingProgress:
    progress = StoppingProgress()
    progress.on_event(TrainingEvent("start", 0, n_epochs, 0.0, info={"stopping": rule}))
    return progress


def test_active_only_when_the_rule_can_end_the_run_within_its_bound():
    assert _progress().active
    assert not _progress({"tol": None}).active
    assert not _progress(dict(RULE, tol=0.0)).active
    assert not _progress(n_epochs=29).active  # min_epochs 30
    # checks at epochs 10, 20, 30 and at the bound 35: three changes, three quiet checks possible
    assert _progress(n_epochs=35).active
    assert not _progress(n_epochs=30).active  # checks at 10, 20, 30: only two changes
    assert not StoppingProgress().active  # a loop that sends no rule


def test_fraction_is_the_log_way_from_the_first_change_down_to_tol():
    progress = _progress()
    assert progress.fraction() == 0.0  # nothing measured yet
    progress.on_event(TrainingEvent("epoch", 20, 200, 1.0, metrics={"change": 0.05}))
    assert progress.fraction() == 0.0
    progress.on_event(TrainingEvent("epoch", 30, 200, 1.5, metrics={"change": math.sqrt(0.05 * 0.005)}))
    assert progress.fraction() == pytest.approx(0.5)
    progress.on_event(TrainingEvent("epoch", 40, 200, 2.0, metrics={"change": 0.08}))  # rises: the bar falls back
    assert progress.fraction() == 0.0
    progress.on_event(TrainingEvent("epoch", 50, 200, 2.5, metrics={"change": 0.004}))
    assert progress.fraction() == 1.0 and progress.quiet == 1


def test_end_without_the_trainers_word_is_read_from_the_count():
    """A loop whose final event does not say how it ended: the quiet checks decide."""
    progress = _progress()
    for epoch, change in ((20, 0.004), (30, 0.003), (40, 0.002)):
        progress.on_event(TrainingEvent("epoch", epoch, 200, 1.0, metrics={"change": change}))
    progress.on_event(TrainingEvent("end", 40, 200, 2.0, metrics={"change": 0.002}))
    assert progress.outcome == "converged" and progress.text() == "converged at epoch 40 (change 0.002, tol 0.005)"
    progress = _progress()
    progress.on_event(TrainingEvent("epoch", 20, 200, 1.0, metrics={"change": 0.004}))
    progress.on_event(TrainingEvent("end", 200, 200, 9.0, metrics={"change": 0.004}))
    assert progress.outcome == "bound"
    # the final event repeats the last change: it is not counted as one more quiet check
    assert progress.quiet == 1


def test_a_change_next_to_tol_gets_the_digits_that_keep_it_on_its_side():
    assert _change(0.0041, 0.005) == "0.0041"
    assert _change(0.004981, 0.005) == "0.00498"  # "0.005" would read as not below tol
    assert _change(0.005004, 0.005) == "0.005004"
    assert _change(0.005, 0.005) == "0.005"
    assert _change(0.0123, None) == "0.012"
    progress = _progress()
    progress.on_event(TrainingEvent("epoch", 20, 200, 1.0, metrics={"change": 0.004981}))
    assert progress.text().startswith("converging: change 0.00498 (tol 0.005, 1/3 quiet checks)")


def test_the_final_change_is_kept_when_no_epoch_event_carried_it():
    progress = _progress()
    progress.on_event(TrainingEvent("end", 60, 200, 3.0, metrics={"change": 0.001}, info={"stop": "converged"}))
    assert progress.text() == "converged at epoch 60 (change 0.001, tol 0.005)"


# ---------------------------------------------------------------------------------- a real run
def test_a_real_auto_run_prints_the_rules_progress_on_stderr(capsys):
    from egu_widgets.cube.synthetic import make_demo
    from egu_widgets.engine.estimator import TOL, EGUNet

    cube = make_demo(10, 10, 12, 3)
    small = dict(encoder_widths=(16, 8, 4), decoder_widths=(4, 8, 16), num_threads=1)
    model = EGUNet(n_endmembers=3, epochs="auto", seed=0, progress=True, **small).fit(cube)
    frames = _frames(capsys.readouterr().err)
    outcome = model.outcome_
    converging = [f for f in frames if f.startswith("egu-pw converging: change ")]
    assert converging, frames[:5]
    tol = f"{TOL:g}"  # the default preset's tolerance, as the bar prints it
    assert re.search(
        rf"\(tol {re.escape(tol)}, [0-3]/3 quiet checks(, waiting for epoch \d+)?\) epoch \d+ of at most 200",
        converging[-1],
    )
    assert not any("/200" in f for f in frames)
    change = f"change {_change(outcome.change, TOL)}, tol {tol}"
    if outcome.stop == "converged":
        assert frames[-1].startswith(f"egu-pw converged at epoch {outcome.epochs_done} ({change})"), frames[-1]
    else:
        assert outcome.stop == "bound" and frames[-1].startswith(f"egu-pw reached the bound of 200 epochs ({change})")
