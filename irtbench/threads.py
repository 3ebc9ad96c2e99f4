r"""The thread policy of measured fits, and how much of the machine a fit had.

A benchmark's numbers are worth what they are worth on a busy machine. torch's OpenMP threads
(and XLA's, and BLAS's) are sized for every core and, by default, *spin* while they wait for
each other: when one core is taken by another process, every parallel region waits for a
scheduler slice, and a 1-second fit takes a minute. The policy here, applied to every measured
fit (in its worker process, before the backends start their thread pools):

* **wait policy**: importing irtbench sets ``OMP_WAIT_POLICY=PASSIVE`` and
  ``GOMP_SPINCOUNT=10000`` (unless the user chose): an idle OpenMP thread spins for about 0.1 ms,
  then sleeps, instead of spinning for 3 ms. GNU OpenMP reads them once, when torch loads it,
  so irtbench must be imported before torch for them to apply (the sweep's workers are);
* **threads**: a fit runs on ``threads`` cores that it is pinned to
  (``os.sched_setaffinity``), chosen among the cores this process may use: by default
  (``threads=None``, "auto") those that other processes leave idle, measured over
  :data:`SAMPLE_SECONDS` from ``/proc/stat`` just before the fit (at least one); with a number,
  that many of the least busy ones. Every backend is held to it: torch's intra-op (and, where
  still possible, inter-op) threads, BLAS and OpenMP pools through ``threadpoolctl``, and XLA's
  CPU thread pool, which is sized from the affinity when JAX starts its backend (in the worker,
  after the pinning).

What a fit had is measured around it (:class:`Usage`): its process's CPU time, and the share
of its cores' time that *other* processes certainly used (``contention``, from ``/proc/stat``'s
per-core counters, which tick at ``USER_HZ``, 100 per second; what the counters cannot resolve
is not counted, so a stretch of a few tens of milliseconds, too short to tell, reads 0 rather
than noise: :class:`Usage` gives the rule).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "WAIT_POLICY",
    "CONTENDED",
    "allowed_cores",
    "busy_shares",
    "choose_cores",
    "held_to",
    "pinned",
    "thread_limits",
    "Usage",
    "policy",
    "split_cores",
]

#: the OpenMP wait policy irtbench asks for (set at import unless the user chose one) ...
WAIT_POLICY = "PASSIVE"
#: ... with a short spin first (GNU OpenMP's GOMP_SPINCOUNT, about 0.1 ms; its default without a
#: policy is 300000, about 3 ms): a thread catches the next parallel region of a tight loop
#: without a futex wake-up, and gives up a contended core within a fraction of a time slice
SPIN_COUNT = "10000"
os.environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)
os.environ.setdefault("GOMP_SPINCOUNT", SPIN_COUNT)

#: how long the busy cores are sampled before a fit with ``threads=None``
SAMPLE_SECONDS = 0.1
#: a core whose time other processes used for at least this share is busy (not chosen by auto)
BUSY_CORE = 0.5
#: a fit is *contended* when other processes used at least this share of its cores' time
CONTENDED = 0.25

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def allowed_cores() -> list[int]:
    """The cores this process may run on (``os.sched_getaffinity``), sorted."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def _core_ticks() -> dict[int, tuple[int, int]]:
    """Per core: (busy ticks, all ticks) from ``/proc/stat`` (empty where there is none)."""
    ticks = {}
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return ticks
    for line in lines:
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
        idle = values[3] + values[4]
        ticks[int(name[3:])] = (sum(values) - idle, sum(values))
    return ticks


def busy_shares(cores: Sequence[int], seconds: float = SAMPLE_SECONDS) -> dict[int, float]:
    """The share of each core's time spent busy over the next ``seconds`` (0 where unknown)."""
    before = _core_ticks()
    time.sleep(seconds)
    after = _core_ticks()
    shares = {}
    for core in cores:
        if core in before and core in after:
            busy = after[core][0] - before[core][0]
            total = after[core][1] - before[core][1]
            shares[core] = busy / total if total > 0 else 0.0
        else:
            shares[core] = 0.0
    return shares


def choose_cores(threads: int | None, cores: Sequence[int] | None = None) -> list[int]:
    """The cores a fit runs on: ``threads`` of ``cores`` (default: :func:`allowed_cores`), the
    least busy first; ``threads=None`` takes every core other processes leave idle (busy under
    :data:`BUSY_CORE` of the time), at least one."""
    cores = list(cores) if cores is not None else allowed_cores()
    if threads is not None and not 1 <= threads <= len(cores):
        raise ValueError(f"threads={threads!r} must be between 1 and the {len(cores)} core(s) "
                         f"available ({','.join(map(str, cores))})")
    if threads == len(cores):
        return cores
    shares = busy_shares(cores)
    ranked = sorted(cores, key=lambda core: (shares[core], core))
    if threads is None:
        threads = max(1, sum(shares[core] < BUSY_CORE for core in cores))
    return sorted(ranked[:threads])


def split_cores(jobs: int, cores: Sequence[int] | None = None) -> list[list[int]]:
    """``jobs`` disjoint groups of the cores, as equal as they can be (one per parallel cell)."""
    cores = list(cores) if cores is not None else allowed_cores()
    if not 1 <= jobs <= len(cores):
        raise ValueError(f"jobs={jobs!r} must be between 1 and the {len(cores)} core(s) this "
                         "process may use (each parallel cell gets cores of its own)")
    share, extra = divmod(len(cores), jobs)
    groups, start = [], 0
    for job in range(jobs):
        size = share + (job < extra)
        groups.append(cores[start:start + size])
        start += size
    return groups


@contextlib.contextmanager
def pinned(cores: Sequence[int]) -> Iterator[None]:
    """This process on ``cores`` alone (its affinity restored after)."""
    if not hasattr(os, "sched_setaffinity"):
        yield
        return
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, set(cores))
    try:
        yield
    finally:
        os.sched_setaffinity(0, previous)


_interop_set = False


@contextlib.contextmanager
def thread_limits(threads: int) -> Iterator[None]:
    """torch's intra-op threads, its inter-op threads (settable once per process, before any
    inter-op work) and every BLAS/OpenMP pool that ``threadpoolctl`` finds held to ``threads``;
    the previous settings restored after."""
    global _interop_set
    import torch
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    if not _interop_set:
        with contextlib.suppress(RuntimeError):  # too late once inter-op work has run
            torch.set_num_interop_threads(threads)
        _interop_set = True
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def held_to(threads: int | None, cores: Sequence[int] | None = None) -> Iterator[list[int]]:
    """The policy of a measured fit in its own process: choose its cores
    (:func:`choose_cores`), pin the process to them and hold every backend to their number;
    yields the chosen cores. JAX must start its backend inside (XLA sizes its pool then)."""
    chosen = choose_cores(threads, cores)
    with pinned(chosen), thread_limits(len(chosen)):
        yield chosen


#: what ``/proc/stat``'s busy time of one core cannot resolve over a stretch, in ticks: less
#: than one tick at each of the two readings
RESOLUTION_TICKS = 2


@dataclass
class Usage:
    r"""What a stretch of work had of the machine, measured around it (``with Usage(cores) as
    usage: ...``): ``wall_seconds``, ``cpu_seconds`` (this process's CPU time, every thread,
    plus that of the child processes it started and waited for inside, as the ``py-irt`` peer's
    interpreter), and ``contention``, the share of ``cores``' time that other processes
    certainly used:

    .. math:: \max\Big(0, \frac{\text{busy}(\text{cores}) - \text{cpu}_\text{self}
        - 2|\text{cores}|/\text{USER\_HZ}}{\text{wall} \cdot |\text{cores}|}\Big)

    (NaN where ``/proc/stat`` is not available). The busy time is what ``/proc/stat``'s
    per-core counters say, in ticks of 1/USER_HZ (10 ms), read at the start and at the end:
    each reading of each core is short by up to one tick, so the busy time is known to
    :data:`RESOLUTION_TICKS` ticks per core, while the process's own CPU time (every thread of
    a multi-threaded fit, however many cores they kept busy) is exact to the nanosecond. The
    rule subtracts the own CPU time and that resolution, so what is left is time other
    processes took for sure. Before it did not subtract the resolution: on an idle machine a
    fit of 20 ms on two cores whose counters happened to advance by one tick more than its
    own 20 ms of CPU read 25%, contended; the fits that many ticks can resolve (a second on
    two cores: to 1%) read as before."""

    cores: Sequence[int]
    wall_seconds: float = float("nan")
    cpu_seconds: float = float("nan")
    contention: float = float("nan")

    def __enter__(self) -> Usage:
        self._ticks = _core_ticks()
        self._cpu = _cpu_time()
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_seconds = time.perf_counter() - self._wall
        self.cpu_seconds = _cpu_time() - self._cpu
        after = _core_ticks()
        if not all(core in after and core in self._ticks for core in self.cores):
            return
        busy = sum(after[core][0] - self._ticks[core][0] for core in self.cores) / _TICK
        resolution = RESOLUTION_TICKS * len(self.cores) / _TICK
        available = self.wall_seconds * len(self.cores)
        if available > 0:
            others = busy - self.cpu_seconds - resolution
            self.contention = min(1.0, max(0.0, others / available))


def _cpu_time() -> float:
    """CPU seconds of this process (every thread) and of its waited-for children."""
    try:
        import resource
    except ImportError:  # not a Unix: no children's account
        return time.process_time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def policy(threads: int | None, jobs: int = 1) -> dict[str, object]:
    """The thread policy and the machine's state now, for ``environment.json``."""
    try:
        load = [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        load = None
    return {
        "threads": "auto" if threads is None else threads,
        "jobs": jobs,
        "wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "spin_count": os.environ.get("GOMP_SPINCOUNT"),
        "affinity": allowed_cores(),
        "load_average": load,
    }
