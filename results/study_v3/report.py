"""Study v3, step 6 (PLAN.md): the report.

    python results/study_v3/report.py

Runs the analysis (analyse.py) over every pre-registered setting, writes it to
results/study_v3/RESULTS.md, and writes results/REPORT.md: a title, report_intro.md (the
question, the design, the confound checks), the analysis with its headings one level
down, and report_discussion.md when it exists (written once every setting is in).
Settings whose held-out benches are not finished are listed as pending by the analysis.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, HERE)
import analyse  # noqa: E402

TITLE = "# Study v3: does a run of the engine beat the best tuned hand-designed loss?"


def build(here: str = HERE, results: str = analyse.RESULTS) -> tuple[str, str]:
    """(RESULTS.md, REPORT.md) text."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        analyse.main(list(analyse.SETTINGS), here, results)
    analysis = out.getvalue()
    body = analysis.split("\n", 1)[1].lstrip("\n")  # without the analysis's own title
    body = "\n".join("#" + line if line.startswith("#") else line for line in body.splitlines())
    parts = [TITLE, _read(os.path.join(here, "report_intro.md")), "## Results\n\n" + body]
    discussion = os.path.join(here, "report_discussion.md")
    if os.path.exists(discussion):
        parts.append(_read(discussion))
    return analysis, "\n\n".join(p.strip("\n") for p in parts) + "\n"


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def main() -> None:
    analysis, report = build()
    with open(os.path.join(HERE, "RESULTS.md"), "w") as f:
        f.write(analysis)
    with open(os.path.join(ROOT, "results", "REPORT.md"), "w") as f:
        f.write(report)
    print("wrote results/study_v3/RESULTS.md and results/REPORT.md")


if __name__ == "__main__":
    main()
