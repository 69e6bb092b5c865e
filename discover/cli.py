"""The ``discover`` command line (typer + rich).

Errors a user can cause (a bad grammar file, an unknown task, a missing run) are
reported in one line on stderr with exit code 2 and no traceback; anything else is a
bug and raises. The app and its defaults are in ``discover/app.py``; the commands, one
module per group, in ``discover/commands_*.py``.
"""

from __future__ import annotations

import sys

import typer

from discover import commands_bench, commands_data, commands_grammar, commands_search  # noqa: F401 - registers
from discover.app import UsageProblem, app, declare_evaluator_options
from discover.errors import user_errors

# typer's exception classes (typer 0.29 carries its own copy of click's), found from a public name
_EXC = sys.modules[typer.BadParameter.__module__]


def main() -> None:
    """Entry point: runs the app, turning user errors into one line and exit code 2, bad
    options and arguments included (click's usage errors, with the command's --help named)."""
    with user_errors(UsageProblem):
        declare_evaluator_options()  # from the evaluators registered now
        try:
            code = app(standalone_mode=False)
        except _EXC.NoArgsIsHelpError as e:
            e.show()  # a group called bare: its help, as before
            sys.exit(e.exit_code)
        except _EXC.UsageError as e:
            where = f" (see {e.ctx.command_path} --help)" if e.ctx is not None else ""
            raise UsageProblem(f"{e.format_message()}{where}") from None
        except _EXC.ClickException as e:
            raise UsageProblem(e.format_message()) from None
        except typer.Abort:
            print("Aborted.", file=sys.stderr)
            sys.exit(1)
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
