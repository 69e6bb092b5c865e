"""The README is a front page that stays true: short, with the two commands exactly as
written, and its Python example runs on the committed run it names."""

from __future__ import annotations

import contextlib
import io
import os
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MAIN_COMMAND = ("python3 -m venv .venv && . .venv/bin/activate && pip install -e . && "
                "discover run --grammar mirror.yaml")
# The marker line the README puts right above the example this file runs.
EXAMPLE_MARKER = "<!-- tests/test_readme.py runs the next block from the repository root -->"


def readme() -> str:
    return README.read_text(encoding="utf-8")


def ci_test_command() -> str:
    """The command `.ci/run` runs: its last non-comment line."""
    lines = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")][-1]


def python_example(text: str) -> str:
    """The ```python block right after the marker line."""
    match = re.search(re.escape(EXAMPLE_MARKER) + r"\n```python\n(.*?)\n```", text, re.S)
    assert match, "README.md: no ```python block right after the test marker"
    return match.group(1)


def test_readme_is_a_front_page():
    lines = readme().splitlines()
    assert len(lines) < 250, f"README.md has {len(lines)} lines; move detail to docs/"
    longest = max(len(line) for line in lines)
    assert longest < 400, f"README.md has a line of {longest} characters"


def test_readme_has_the_two_commands_exactly():
    text = readme()
    assert ci_test_command().startswith("python3 -m venv .venv && ")  # .ci/run still runs the README's command
    for command in (MAIN_COMMAND, ci_test_command()):
        assert f"\n    {command}\n" in text, f"README.md lacks the command line {command!r}"


@pytest.mark.parametrize("page", ["README.md", *sorted(p.name for p in (ROOT / "docs").glob("*.md"))])
def test_links_point_to_files(page):
    path = README if page == "README.md" else ROOT / "docs" / page
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8")):
        assert (path.parent / target).exists(), f"{path.relative_to(ROOT)} links to a missing {target}"


@pytest.mark.slow
def test_readme_python_example_runs(monkeypatch):
    pytest.importorskip("torch")
    source = python_example(readme())
    monkeypatch.chdir(ROOT)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, "README.md (Python API example)", "exec"), {"__name__": "readme_example"})  # noqa: S102
    printed = out.getvalue()
    assert "default-run-v3" in printed and "tensor(" in printed
    assert not os.path.exists(ROOT / "my_loss.py")  # the example writes nothing into the checkout
