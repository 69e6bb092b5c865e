"""The ``discover`` command line (typer + rich).

Errors a user can cause (a bad grammar file, an unknown task, a missing run) are
reported in one line on stderr with exit code 2 and no traceback; anything else is a
bug and raises. The app and its defaults are in ``discover/app.py``; the commands, one
module per group, in ``discover/commands_*.py``.
"""

from __future__ import annotations

from discover import commands_bench, commands_data, commands_grammar, commands_search  # noqa: F401 - registers
from discover.app import UsageProblem, app, declare_evaluator_options
from discover.errors import user_errors


def main() -> None:
    """Entry point: runs the app, turning user errors into one line and exit code 2
    (typer itself reports bad options and arguments, also with exit code 2)."""
    with user_errors(UsageProblem):
        declare_evaluator_options()  # from the evaluators registered now
        app()


if __name__ == "__main__":
    main()
