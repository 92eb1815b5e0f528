"""The dashboard's redraw scheduling on fake clocks: the time throttle, the CPU budget, and the
hand-off of redraws from a training thread to the UI thread's event loop. No widgets needed."""

from __future__ import annotations

import asyncio
import threading

import pytest

from egu_widgets.errors import InputError
from egu_widgets.widgets.redraw import LoopHandoff, RedrawScheduler


class FakeClock:
    def __init__(self, now: float = 100.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def _scheduler(**kw):
    wall, cpu = FakeClock(), FakeClock(0.0)
    return RedrawScheduler(clock=wall, cpu_clock=cpu, **kw), wall, cpu


def _draw_costing(cpu: FakeClock, seconds: float, built: bool = False):
    def draw():
        cpu.now += seconds
        return built

    return draw


def test_throttle_waits_update_every_seconds_after_each_redraw():
    sched, wall, cpu = _scheduler(update_every=0.2, overhead_budget=1.0)
    sched.start(0.0)
    assert sched.due(0.0)
    assert sched.redraw(_draw_costing(cpu, 0.001)) is False
    wall.now += 0.1
    assert not sched.due(0.1)
    wall.now += 0.15
    assert sched.due(0.25)
    assert sched.redraws == 1 and sched.redraw_cpu_seconds == pytest.approx(0.001)


def test_zero_update_every_redraws_whenever_the_budget_allows():
    sched, wall, cpu = _scheduler(update_every=0.0, overhead_budget=1.0)
    sched.start(0.0)
    for _ in range(5):
        assert sched.due(0.0)
        sched.redraw(_draw_costing(cpu, 0.001))
    assert sched.redraws == 5


def test_budget_is_a_share_of_training_time_plus_grace():
    sched, wall, cpu = _scheduler(update_every=0.0, overhead_budget=0.04, grace=0.01)
    sched.start(0.0)
    sched.charge_event(0.1)
    assert sched.spent == pytest.approx(0.1) and sched.event_cpu_seconds == pytest.approx(0.1)
    assert not sched.due(1.0)  # 0.1 s spent, 1 s trained: 0.04 + 0.01 allowed
    assert sched.due(3.0)  # 3 s trained: 0.12 + 0.01 allowed
    assert not sched.can_build(3.0)  # a first drawing is expected to cost 0.3 s
    assert sched.can_build(10.0)
    # a new run starts from nothing spent
    sched.start(0.0)
    assert sched.spent == 0.0 and sched.due(0.0)


def test_training_time_falls_back_to_the_schedulers_own_clock():
    sched, wall, cpu = _scheduler(overhead_budget=0.5)
    sched.start(0.0)
    wall.now += 2.0
    assert sched.training_time(0.0) == pytest.approx(2.0)  # the events' clock says nothing
    assert sched.training_time(5.0) == pytest.approx(5.0)
    sched.start(1.0)  # started a second ago
    assert sched.training_time(0.0) == pytest.approx(1.0)


def test_cost_estimates_follow_measured_redraws():
    sched, wall, cpu = _scheduler(build_estimate=0.3, redraw_estimate=0.005)
    sched.redraw(_draw_costing(cpu, 0.1, built=True))
    assert sched.build_estimate == pytest.approx(0.2)
    sched.redraw(_draw_costing(cpu, 0.015))
    assert sched.redraw_estimate == pytest.approx(0.7 * 0.005 + 0.3 * 0.015)
    assert sched.spent == pytest.approx(0.115)
    other, _, _ = _scheduler()
    assert other.build_estimate == 0.3  # estimates belong to one scheduler, not the process


@pytest.mark.parametrize("kw", [{"update_every": -1.0}, {"overhead_budget": 0.0}, {"overhead_budget": 1.5}])
def test_bad_settings_are_refused(kw):
    with pytest.raises(InputError):
        RedrawScheduler(**kw)


def test_handoff_draws_at_once_on_the_ui_thread():
    drawn = []
    handoff = LoopHandoff(lambda: drawn.append(threading.current_thread()))
    handoff.request()
    assert drawn == [threading.current_thread()]


def test_handoff_from_a_training_thread_goes_through_the_loop():
    drawn = []

    async def main():
        handoff = LoopHandoff(lambda: drawn.append(threading.current_thread()), patience=60.0)
        worker = threading.Thread(target=handoff.request, kwargs={"final": True})
        worker.start()
        while worker.is_alive():  # the final request waits for the loop to have drawn
            await asyncio.sleep(0.01)
        worker.join()

    asyncio.run(main())
    assert drawn == [threading.main_thread()]


def test_handoff_draws_from_the_training_thread_when_the_loop_stays_busy():
    drawn = []
    clock = FakeClock()
    loop = asyncio.new_event_loop()  # never run: a kernel busy with a long cell
    try:
        handoff = LoopHandoff(lambda: drawn.append(threading.current_thread()), patience=0.5, clock=clock)
        handoff.loop = loop

        def from_worker(**kw):
            worker = threading.Thread(target=handoff.request, kwargs=kw)
            worker.start()
            worker.join(10)
            assert not worker.is_alive()

        from_worker()
        assert drawn == []  # handed to the loop
        clock.now += 0.1
        from_worker()
        assert drawn == []  # still within patience: nothing more to do
        clock.now += 0.5
        from_worker()
        assert len(drawn) == 1 and drawn[0] is not threading.main_thread()
    finally:
        loop.close()


def test_handoff_to_a_closed_loop_draws_where_asked():
    drawn = []
    loop = asyncio.new_event_loop()
    loop.close()  # the kernel is shutting down
    handoff = LoopHandoff(lambda: drawn.append(threading.current_thread()))
    handoff.loop = loop
    worker = threading.Thread(target=handoff.request, kwargs={"final": True})
    worker.start()
    worker.join(10)
    assert len(drawn) == 1 and drawn[0] is worker
