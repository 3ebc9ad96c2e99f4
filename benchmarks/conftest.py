"""pytest-benchmark configuration: the size grid, the estimators, and the machine info.

Options (or environment variables):
    --sizes 100x100,1000x100      IRTBENCH_SIZES       the response-matrix sizes
    --estimators torch-adam,...   IRTBENCH_ESTIMATORS  default: those of the default sweep
    --device cpu|cuda|auto        IRTBENCH_DEVICE      default: cpu
    --rounds 3                    IRTBENCH_ROUNDS      timed rounds (after one warm-up round)
    --threads auto|N              IRTBENCH_THREADS     threads of each fit (irtbench.threads)
"""

from __future__ import annotations

import os

import irtbench
from irtbench.responses import parse_size
from irtbench.results import environment

#: the default run takes a few minutes; larger sizes (--sizes 1000x1000) and the peers
#: (--estimators mirt-em,girth-mml,girth-cml) on demand
DEFAULT_SIZES = "100x100,1000x100"


def pytest_addoption(parser):
    group = parser.getgroup("irtbench")
    group.addoption("--sizes", default=os.environ.get("IRTBENCH_SIZES", DEFAULT_SIZES),
                    help="comma-separated STUDENTSxQUESTIONS (default: %(default)s)")
    group.addoption("--estimators", default=os.environ.get("IRTBENCH_ESTIMATORS"),
                    help="comma-separated estimator names (default: those of the default "
                    "sweep; the peers mirt-em, girth-mml, girth-cml on demand)")
    group.addoption("--device", default=os.environ.get("IRTBENCH_DEVICE", "cpu"),
                    help="device passed to every estimator (default: %(default)s)")
    group.addoption("--rounds", type=int, default=int(os.environ.get("IRTBENCH_ROUNDS", "3")),
                    help="timed rounds per benchmark (default: %(default)s)")
    group.addoption("--threads", default=os.environ.get("IRTBENCH_THREADS", "auto"),
                    help="threads (and cores, pinned) of each fit: auto, the cores other "
                    "processes leave idle, or a number (default: %(default)s)")


def pytest_generate_tests(metafunc):
    config = metafunc.config
    if "size" in metafunc.fixturenames:
        sizes = [parse_size(text) for text in config.getoption("sizes").split(",") if text]
        metafunc.parametrize("size", sizes, ids=[f"{n}x{m}" for n, m in sizes])
    if "estimator_name" in metafunc.fixturenames:
        chosen = config.getoption("estimators")
        names = chosen.split(",") if chosen else [
            name for name in irtbench.estimators() if irtbench.get_estimator(name).in_default_sweep]
        metafunc.parametrize("estimator_name", names)


#: entries of the environment that differ between two runs on the same machine: left out of the
#: machine info, so that --benchmark-compare does not report a different machine every time
VOLATILE = ("command", "created", "git_commit")


def pytest_benchmark_update_machine_info(config, machine_info):
    """Adds the device and the backends' versions to the saved benchmark JSON."""
    env = environment(config.getoption("device"))
    machine_info["irtbench"] = {k: v for k, v in env.items() if k not in VOLATILE}
