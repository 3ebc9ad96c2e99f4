"""Regenerate docs/options.md's option tables from the declarations (a test holds them equal):

    python benchmarks/option_tables.py
"""

from pathlib import Path

import irtbench
from irtbench.cli import option_tables

START, END = "<!-- options:start -->", "<!-- options:end -->"

if __name__ == "__main__":
    page = Path(__file__).resolve().parents[1] / "docs" / "options.md"
    text = page.read_text()
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    page.write_text(f"{head}{START}\n{option_tables(irtbench.estimators()).strip()}\n{END}{tail}")
    print(f"wrote {page}")
