"""The thread policy: injected affinity, quota and load values (no timing)."""

from __future__ import annotations

import pytest

from egu_widgets.engine import threads
from egu_widgets.engine.threads import CpuBudget, cgroup_cpu_limit, choose_num_threads, policy_threads


@pytest.fixture(autouse=True)
def _fresh_announcements(monkeypatch):
    monkeypatch.setattr(threads, "_announced", set())
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


def budget(affinity=2, quota=None, online=None, load=0.0, own_load=0.0):
    return CpuBudget(affinity=affinity, quota=quota, online=online or affinity, load=load, own_load=own_load)


@pytest.mark.parametrize(
    "cpus, load, own, expected",
    [
        (2, 0.1, 0.0, 2),  # idle machine: torch's default
        (2, 1.0, 0.0, 1),  # one busy process beside us: one free CPU
        (2, 2.0, 0.0, 1),  # the case, two CPU-bound processes: never below one
        (2, 6.0, 0.0, 1),
        (2, 2.0, 2.0, 2),  # the load is this process's own earlier fit: not other work
        (16, 4.2, 0.0, 12),
        (16, 3.4, 0.0, 13),  # 12.6 free CPUs round to 13
    ],
)
def test_load_on_the_usable_cpus_lowers_the_count(cpus, load, own, expected):
    assert policy_threads(budget(cpus, load=load, own_load=own), torch_default=cpus) == expected


def test_affinity_and_quota_cap_the_count():
    assert policy_threads(budget(affinity=4, online=64), torch_default=64) == 4
    assert policy_threads(budget(affinity=64, quota=2.0, online=64), torch_default=64) == 2
    assert policy_threads(budget(affinity=64, quota=1.5, online=64), torch_default=64) == 1  # no half CPUs
    assert policy_threads(budget(affinity=64, quota=0.5, online=64), torch_default=64) == 1
    assert policy_threads(budget(affinity=3, quota=8.0, online=64), torch_default=64) == 3


def test_machine_wide_load_is_scaled_to_the_usable_cpus():
    # A 64-CPU host at load 32 is half busy: of our 4 CPUs, 2 are taken.
    assert budget(affinity=4, online=64, load=32.0).others == pytest.approx(2.0)
    assert policy_threads(budget(affinity=4, online=64, load=32.0), torch_default=64) == 2


def test_never_above_torchs_default_nor_below_one():
    assert policy_threads(budget(16), torch_default=4) == 4
    assert policy_threads(budget(16, load=100.0), torch_default=4) == 1
    assert policy_threads(budget(2, load=None), torch_default=2) == 2  # no load average: the default


def test_explicit_count_and_environment_win(monkeypatch):
    loaded = budget(2, load=5.0)
    assert choose_num_threads(2, torch_default=2, budget=loaded) == 2
    assert choose_num_threads(7, torch_default=2, budget=loaded) == 7
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert choose_num_threads(None, torch_default=2, budget=loaded) == 2


def test_one_line_when_the_count_is_lowered_and_only_once():
    lines = []
    loaded = budget(2, load=3.0)
    assert choose_num_threads(torch_default=2, budget=loaded, log=lines.append) == 1
    assert choose_num_threads(torch_default=2, budget=loaded, log=lines.append) == 1
    assert len(lines) == 1 and "\n" not in lines[0]
    assert lines[0].startswith("torch threads: 1 instead of 2") and "load average 3.00" in lines[0]
    assert "num_threads" in lines[0]
    assert choose_num_threads(torch_default=2, budget=budget(2, load=0.0), log=lines.append) == 2
    assert len(lines) == 1  # nothing said when the default stands


def test_the_line_names_the_quota():
    lines = []
    choose_num_threads(torch_default=16, budget=budget(16, quota=2.0), log=lines.append)
    assert lines == [
        "torch threads: 2 instead of 16: this process may use 2 CPUs (a cgroup quota of 2). "
        "Pass num_threads= to choose the count yourself."
    ]


def _cgroup(tmp_path, proc_lines, files):
    root = tmp_path / "cgroup"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    proc = tmp_path / "proc_cgroup"
    proc.write_text("\n".join(proc_lines) + "\n")
    return root, proc


def test_cgroup_v2_quota_tightest_over_the_parents(tmp_path):
    root, proc = _cgroup(
        tmp_path,
        ["0::/user.slice/job"],
        {
            "cgroup.controllers": "cpu memory",
            "cpu.max": "max 100000",
            "user.slice/cpu.max": "150000 100000",
            "user.slice/job/cpu.max": "400000 100000",
        },
    )
    assert cgroup_cpu_limit(root, proc) == pytest.approx(1.5)


def test_cgroup_v2_without_a_limit(tmp_path):
    root, proc = _cgroup(tmp_path, ["0::/"], {"cgroup.controllers": "cpu", "cpu.max": "max 100000"})
    assert cgroup_cpu_limit(root, proc) is None


def test_cgroup_v1_quota_and_the_containers_own_files(tmp_path):
    # The path named in /proc/self/cgroup is the host's; inside the container the mount root holds ours.
    root, proc = _cgroup(
        tmp_path,
        ["4:memory:/docker/abc", "3:cpu,cpuacct:/docker/abc", "0::/"],
        {"cpu,cpuacct/cpu.cfs_quota_us": "300000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"},
    )
    assert cgroup_cpu_limit(root, proc) == pytest.approx(3.0)


def test_cgroup_v1_unlimited_and_missing_files(tmp_path):
    root, proc = _cgroup(
        tmp_path,
        ["2:cpu:/"],
        {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"},
    )
    assert cgroup_cpu_limit(root, proc) is None
    assert cgroup_cpu_limit(tmp_path / "nothing", tmp_path / "no-proc-file") is None


def test_hybrid_layout_reads_the_unified_mount(tmp_path):
    root, proc = _cgroup(
        tmp_path,
        ["1:cpu:/", "0::/"],
        {
            "cpu/cpu.cfs_quota_us": "-1",
            "cpu/cpu.cfs_period_us": "100000",
            "unified/cgroup.controllers": "",
            "unified/cpu.max": "200000 100000",
        },
    )
    assert cgroup_cpu_limit(root, proc) == pytest.approx(2.0)


def test_own_load_follows_this_process_cpu_time(monkeypatch):
    clock = {"wall": 0.0, "cpu": 0.0}
    monkeypatch.setattr(threads.time, "monotonic", lambda: clock["wall"])
    monkeypatch.setattr(threads.time, "process_time", lambda: clock["cpu"])
    own = threads._OwnLoad()
    clock.update(wall=600.0, cpu=1200.0)  # two CPUs busy for ten minutes: the average reaches 2
    assert own.update() == pytest.approx(2.0, rel=1e-3)
    clock.update(wall=1200.0)  # then idle for ten minutes
    assert own.update() == pytest.approx(0.0, abs=1e-3)


def test_the_real_machine_reads_sensibly():
    real = threads.read_cpu_budget()
    assert real.affinity >= 1 and real.online >= real.affinity and real.usable >= 1
    assert 1 <= choose_num_threads(torch_default=real.usable, log=None) <= real.usable
