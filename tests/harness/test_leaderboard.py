"""benchmarks/leaderboard.py: issue 31's commands at the leaderboard's shape. The run itself
is minutes (it is the measurement); here the floor it reports and its bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import benchmark_script

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def leaderboard():
    return benchmark_script("leaderboard")


def test_the_floor_falls_with_k_and_is_lower_for_the_most_informative_items(leaderboard):
    """The floor of the accuracy error: the most informative k items at the population give
    the larger information for the average respondent, so the lower floor; more items, a
    lower floor; with every item both choices are the same set."""
    table = leaderboard.floor_table(200, 400, 0, sizes=(10, 50, 400))
    rows = [line.split("|")[1:-1] for line in table.splitlines()[2:]]
    floors = np.array([[float(cell) for cell in row] for row in rows])
    assert (np.diff(floors[:, 1]) < 0).all() and (np.diff(floors[:, 2]) < 0).all()
    assert (floors[:2, 1] < floors[:2, 2]).all()
    assert floors[2, 1] == pytest.approx(floors[2, 2], rel=1e-9)  # all items: the same set


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    script = str(ROOT / "benchmarks" / "leaderboard.py")
    unknown = subprocess.run([sys.executable, script, "--steps", "fit", "--out", str(tmp_path)],
                             capture_output=True, text=True, check=False)
    assert unknown.returncode == 2 and "unknown step 'fit'" in unknown.stderr
    missing = subprocess.run([sys.executable, script, "--render", "--out", str(tmp_path)],
                             capture_output=True, text=True, check=False)
    assert missing.returncode == 2 and "steps.csv is missing" in missing.stderr
    (tmp_path / "compare").mkdir()
    pd.DataFrame().to_csv(tmp_path / "steps.csv")
    present = subprocess.run([sys.executable, script, "--steps", "compare", "--out",
                              str(tmp_path)], capture_output=True, text=True, check=False)
    assert present.returncode == 2 and "--force replaces them" in present.stderr
