"""The thread policy and parallel sweeps: every fit knows what it had of the machine, and cells
run at once (on their own cores, or on a dask cluster) give the rows of cells run one by one."""

from __future__ import annotations

import json
import os
import subprocess
import time

import numpy as np
import pandas as pd
import pytest

from irtbench import harness, threads
from irtbench.baseline import SLOWER_WARNING, check
from irtbench.results import RESULTS_FILE

CELLS = dict(sizes=[(60, 12), (100, 20)], estimator_names=["jml-newton", "cml", "torch-adam"],
             seeds=1, device="cpu", models=("rasch",), options={"torch-adam:epochs": 30},
             progress=False)
#: what a deterministic fit must reproduce exactly wherever its cell ran
SAME = ["estimator", "model", "n_students", "n_questions", "missing", "seed", "status",
        "n_observed", "n_iter", "final_loss", "rmse_skill", "rmse_difficulty",
        "crb_ratio_difficulty", "coverage_difficulty", "threads"]


@pytest.fixture
def busy_loop():
    """A shell busy loop pinned to this process's first core, for the duration of a test."""
    core = threads.allowed_cores()[0]
    loop = subprocess.Popen(["sh", "-c", "while :; do :; done"],
                            preexec_fn=lambda: os.sched_setaffinity(0, {core}))
    time.sleep(0.3)
    yield core
    loop.kill()
    loop.wait()


def test_a_fit_beside_a_busy_loop_on_its_core_is_measured_as_contended(busy_loop):
    with threads.pinned([busy_loop]), threads.Usage([busy_loop]) as usage:
        deadline = time.perf_counter() + 0.6
        while time.perf_counter() < deadline:  # CPU work that has to share the core
            pass
    assert usage.contention >= threads.CONTENDED
    assert usage.cpu_seconds < 0.9 * usage.wall_seconds


def test_auto_threads_leave_a_busy_core_alone(busy_loop):
    cores = threads.allowed_cores()
    if len(cores) < 2:
        pytest.skip("one core: nothing to choose between")
    others = threads.busy_shares([core for core in cores if core != busy_loop])
    if any(share >= threads.BUSY_CORE for share in others.values()):  # pytest -n 2: the other
        pytest.skip("other processes (another test worker) keep the other cores busy too: "
                    "no idle core to choose")
    chosen = threads.choose_cores(None)
    assert busy_loop not in chosen and len(chosen) == len(cores) - 1


def test_cores_split_into_disjoint_groups_and_bad_counts_are_refused():
    assert threads.split_cores(2, [0, 1, 2, 3, 4]) == [[0, 1, 2], [3, 4]]
    assert threads.split_cores(1, [5, 7]) == [[5, 7]]
    with pytest.raises(ValueError, match="jobs=3 must be between 1 and the 2 core"):
        threads.split_cores(3, [0, 1])
    with pytest.raises(ValueError, match="threads=3 must be between 1 and the 2 core"):
        threads.choose_cores(3, [0, 1])


def test_rows_say_how_much_of_the_machine_each_fit_had(tmp_path):
    table = harness.sweep(**{**CELLS, "sizes": [(60, 12)]}, out=tmp_path, threads=1, repeat=3)
    assert (table.status == "ok").all()
    assert (table.threads == 1).all() and (table.repeats == 3).all()
    assert (table.seconds_min <= table.seconds).all() and (table.seconds <= table.seconds_max).all()
    assert table.cpu_seconds.gt(0).all() and table.contention.between(0, 1).all()
    assert table.cores.astype(str).str.fullmatch(r"\d+").all()  # one core each, by number
    env = json.loads((tmp_path / "environment.json").read_text())
    policy = env["thread_policy"]
    assert policy["threads"] == 1 and policy["jobs"] == 1 and policy["wait_policy"] == "PASSIVE" and policy["spin_count"] == "10000"
    assert policy["affinity"] == threads.allowed_cores() and len(policy["load_average"]) == 3


def test_two_jobs_give_the_rows_of_one_job(tmp_path):
    if len(threads.allowed_cores()) < 2:
        pytest.skip("one core: two jobs need a core each")
    one = harness.sweep(**CELLS, threads=1, jobs=1, out=tmp_path / "one")
    two = harness.sweep(**CELLS, threads=1, jobs=2, out=tmp_path / "two")
    pd.testing.assert_frame_equal(one[SAME], two[SAME], check_exact=True)
    on_disk = pd.read_csv(tmp_path / "two" / RESULTS_FILE)
    assert len(on_disk) == len(one) and not on_disk.duplicated(SAME[:6]).any()
    # each parallel cell ran on a core of its own
    assert set(two.cores.astype(str)) <= {str(c) for c in threads.allowed_cores()}


def test_an_interrupted_parallel_sweep_keeps_its_rows_and_resumes(tmp_path):
    if len(threads.allowed_cores()) < 2:
        pytest.skip("one core: two jobs need a core each")
    finished = []

    def interrupt_after_two(row):
        finished.append(row)
        if len(finished) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        harness.sweep(**CELLS, threads=1, jobs=2, out=tmp_path, after_row=interrupt_after_two)
    assert len(pd.read_csv(tmp_path / RESULTS_FILE)) == 2
    table = harness.sweep(**CELLS, threads=1, jobs=2, out=tmp_path, resume=True)
    assert len(table) == 6 and not table.duplicated(SAME[:6]).any()


@pytest.mark.parametrize("daemon", [True, False])
def test_a_dask_cluster_gives_the_rows_of_one_job(tmp_path, daemon):
    """On dask workers as users start them (daemonic processes: ``dask worker ADDRESS``'s
    default, where multiprocessing may start no child) and on non-daemonic ones, the rows of
    one local job."""
    dask = pytest.importorskip("dask", reason="dask.distributed is not installed")
    distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")
    local = harness.sweep(**CELLS, threads=1, out=tmp_path / "local")
    with dask.config.set({"distributed.worker.daemon": daemon}), distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        remote = harness.sweep(**CELLS, threads=1, scheduler=cluster.scheduler_address,
                               out=tmp_path / "dask")
    pd.testing.assert_frame_equal(local[SAME], remote[SAME], check_exact=True)
    env = json.loads((tmp_path / "dask" / "environment.json").read_text())
    assert env["thread_policy"]["scheduler"] == cluster.scheduler_address


def test_a_scheduler_that_is_not_there_is_one_clear_error(tmp_path, monkeypatch):
    pytest.importorskip("distributed", reason="dask.distributed is not installed")
    from irtbench.harness import parallel

    monkeypatch.setattr(parallel, "CONNECT_SECONDS", 2)  # nothing listens: no need to wait 30 s
    with pytest.raises(ValueError, match="no dask scheduler at tcp://127.0.0.1:9"):
        harness.sweep(**CELLS, scheduler="tcp://127.0.0.1:9", out=tmp_path)


def test_check_warns_of_slow_and_contended_cells_in_every_mode(tmp_path):
    base = tmp_path / "base"
    harness.sweep(**{**CELLS, "sizes": [(60, 12)]}, threads=1, out=base)
    run = tmp_path / "run"
    run.mkdir()
    for name in ("environment.json", "curves.csv", "errors.csv"):
        (run / name).write_bytes((base / name).read_bytes())
    table = pd.read_csv(base / RESULTS_FILE)
    slow = table.estimator == "cml"
    table.loc[slow, "seconds"] *= 1.01 * SLOWER_WARNING
    # the measured contention is the machine's (a busy one makes every cell contended): set it
    table["contention"] = np.where(table.estimator == "jml-newton", 0.6, 0.0)
    table.to_csv(run / RESULTS_FILE, index=False)
    for mode in ("same", "cross"):
        result = check(run, base, mode=mode)
        assert result.passed  # times are warned about, not failed
        text = "\n".join(result.warnings)
        assert "cml 60x12 seed 0" in text and f"({1.01 * SLOWER_WARNING:.1f}x" in text
        assert "1 cell(s) ran contended" in text and "jml-newton 60x12 seed 0" in text
    summary = harness.summarize(pd.read_csv(run / RESULTS_FILE))
    assert summary.set_index("estimator").contention["jml-newton"] == "60%*"


def test_summary_and_report_of_an_old_folder_without_the_policy(tmp_path):
    harness.sweep(**{**CELLS, "sizes": [(60, 12)]}, threads=1, out=tmp_path)
    table = pd.read_csv(tmp_path / RESULTS_FILE).drop(columns=["threads", "contention"])
    summary = harness.summarize(table)
    assert (summary.contention == "").all() and np.isnan(summary.threads).all()


def _usage_with(monkeypatch, wall: float, own_cpu: float, busy_ticks: list[int]) -> float:
    """The contention :class:`~irtbench.threads.Usage` reads for a stretch of ``wall`` seconds
    on ``len(busy_ticks)`` cores whose ``/proc/stat`` busy counters advanced by ``busy_ticks``
    while this process used ``own_cpu`` CPU seconds (every counter and clock faked)."""
    cores = list(range(len(busy_ticks)))
    readings = iter([{c: (0, 0) for c in cores},
                     {c: (b, round(wall * 100)) for c, b in zip(cores, busy_ticks)}])
    clocks = iter([0.0, wall])
    cpu = iter([0.0, own_cpu])
    monkeypatch.setattr(threads, "_core_ticks", lambda: next(readings))
    monkeypatch.setattr(threads, "_cpu_time", lambda: next(cpu))
    monkeypatch.setattr(threads.time, "perf_counter", lambda: next(clocks))
    monkeypatch.setattr(threads, "_TICK", 100)
    with threads.Usage(cores) as usage:
        pass
    return usage.contention


def test_contention_is_not_tick_noise_of_a_short_fit(monkeypatch):
    """Issue 25: `irtbench check` flagged fits as contended (28-45%) on an idle machine. A fit of
    20 ms on two cores that used its 40 ms of CPU, whose counters advanced by a tick more than
    that (each reading is short by up to a tick per core), read 25%: contended. The counters
    cannot resolve two ticks per core; that much is no longer counted as others' time."""
    assert _usage_with(monkeypatch, 0.02, 0.04, [3, 2]) == 0.0
    assert _usage_with(monkeypatch, 0.05, 0.05, [4, 3]) == 0.0  # one thread, 2 cores, 2 ticks
    # a second on two cores with the other core taken by another process: still seen
    assert _usage_with(monkeypatch, 1.0, 1.0, [100, 100]) == pytest.approx(0.48)
    assert _usage_with(monkeypatch, 1.0, 1.0, [100, 100]) >= threads.CONTENDED
    # a multi-threaded fit that kept both cores busy by itself: nothing for others
    assert _usage_with(monkeypatch, 1.0, 2.0, [101, 100]) == 0.0
