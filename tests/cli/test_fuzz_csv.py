"""Generated CSV files through ``load_responses`` and ``irtbench fit``: every file gets either a
valid fit or one clean error (exit 2, one line naming the file), never a traceback and never a
partial estimates file. Hypothesis draws the files: shapes from 0 to a few cells, blanks, stray
values, other separators, a BOM, CRLF line ends, duplicate headers, wide and long layouts (the
long ones under every accepted name of their columns, in any case)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is not installed "
                                 "(pip install 'irtbench[test]')")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import irtbench  # noqa: E402
from irtbench.cli import main  # noqa: E402
from irtbench.csvio import LONG_COLUMNS  # noqa: E402

CELLS = st.sampled_from(["0", "1", "1", "0", "", "NA", "1.0", "2", "TRUE", " 1", "x", "0;1"])
NAMES = st.sampled_from(["Q1", "Q2", "Q3", "id", "student", "Q1", ""])


@st.composite
def wide_files(draw) -> bytes:
    n_rows = draw(st.integers(0, 6))
    n_columns = draw(st.integers(1, 5))
    header = [draw(NAMES) if draw(st.booleans()) else f"Q{j}" for j in range(n_columns)]
    rows = [[draw(CELLS) for _ in range(n_columns)] for _ in range(n_rows)]
    return _encode(draw, [header, *rows])


@st.composite
def long_files(draw) -> bytes:
    n_rows = draw(st.integers(0, 8))
    rows = [[draw(st.sampled_from(["s1", "s2", "s3"])), draw(st.sampled_from(["a", "b", "c"])),
             draw(CELLS)] for _ in range(n_rows)]
    names = [draw(st.sampled_from(LONG_COLUMNS[role])) for role in LONG_COLUMNS]
    header = [draw(st.sampled_from([name, name.upper(), name.title()])) for name in names]
    order = draw(st.permutations(range(3)))
    return _encode(draw, [[line[k] for k in order] for line in [header, *rows]])


def _encode(draw, lines: list[list[str]]) -> bytes:
    separator = draw(st.sampled_from([",", ",", ",", ";", "\t"]))
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    text = ending.join(separator.join(line) for line in lines) + ending
    prefix = "\ufeff" if draw(st.booleans()) else ""
    return (prefix + text).encode()


def check_one_file(content: bytes, folder: Path) -> None:
    source, out = folder / "responses.csv", folder / "estimates.csv"
    source.write_bytes(content)
    out.unlink(missing_ok=True)
    try:
        table = irtbench.load_responses(source)
    except ValueError as error:
        assert str(error).startswith(str(source)) and "\n" not in str(error)
    else:
        assert table.responses.shape == (len(table.students), len(table.questions))
        assert set(np.unique(table.responses[~np.isnan(table.responses)])) <= {0.0, 1.0}
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        code = main(["fit", str(source), "--estimator", "jml-newton", "--device", "cpu",
                     "--out", str(out)])
    message = stderr.getvalue()
    if code == 0:
        written = pd.read_csv(out)
        unobserved = ["unobserved"] if table.unobserved else []
        assert list(written.columns) == ["kind", "label", "estimate", "se", "extreme",
                                         "origin", *unobserved]
        assert len(written) == sum(map(len, (table.students, table.questions,
                                             *table.unobserved)))
        if unobserved:  # not estimated: empty
            assert written.estimate[written.unobserved].isna().all()
    else:
        assert code == 2 and not out.exists(), message
        assert message.count("\n") == 1 and "Traceback" not in message, message
    assert sorted(p.name for p in folder.iterdir()) in (["responses.csv"],
                                                        ["estimates.csv", "responses.csv"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.one_of(wide_files(), long_files()))
def test_any_csv_gets_a_fit_or_one_clean_error(tmp_path, content):
    check_one_file(content, tmp_path)


@pytest.mark.parametrize("content, message", [
    (b"Q1,Q1\n1,0\n0,1\n", "line 1: the column name 'Q1' appears more than once"),
    (b"Q1;Q2;Q3\n1;0;1\n0;1;0\n", "irtbench reads comma-separated files"),
    (b"id,Q1,Q2\na,1,TRUE\nb,0,1\n", "line 2, column 'Q2': 'TRUE' is not 0, 1 or blank (write it as 1 or 0)"),
    (b"Q1,Q2\n,\n,NA\n", "no observed response: every cell is blank"),
    (b"student,question,response\ns1,a,1\ns1,b,7\n", "line 3, column 'response': '7' is not"),
    (b"student,question,response\ns1,a,1\ns1,a,0\n", "line 3: student 's1' has more than one"),
    (b"Q1,Q2\n", "the file has a header but no rows"),
    (b"", "is not a readable CSV file"),
])
def test_file_errors_name_the_file_line_and_column(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(ValueError) as error:
        irtbench.load_responses(path)
    assert str(error.value).startswith(str(path)) and message in str(error.value)


def test_bom_crlf_and_quoted_labels_read_as_plain_files(tmp_path):
    path = tmp_path / "windows.csv"
    path.write_bytes('\ufeffid,"Q 1",Q2\r\n"Ann, B.",1,0\r\nBob,0,1\r\n'.encode())
    table = irtbench.load_responses(path)
    assert table.students == ["Ann, B.", "Bob"] and table.questions == ["Q 1", "Q2"]
    np.testing.assert_array_equal(table.responses, [[1, 0], [0, 1]])
