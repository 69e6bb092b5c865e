"""User errors across the project, how the CLI reports them, and text from files (grammars,
run folders) made safe to print in rich markup."""

from __future__ import annotations

import contextlib
import sys

from rich.console import Console
from rich.markup import escape

from grammar.errors import GrammarError


class RunError(ValueError):
    """A bad run request: unknown or corrupt run, impossible budget (a user error)."""


def user_error_types() -> tuple[type[BaseException], ...]:
    """The exceptions that mean a user's input is wrong (printed as one line, exit 2), not a bug."""
    from evaluators.errors import InputError

    return (GrammarError, InputError, RunError)


def for_markup(text, lines: bool = False) -> str:
    """``text`` from a file or the command line, safe to put into a rich markup string
    (``f"[bold]{for_markup(name)}[/]"``): control characters escaped (``\\x1b``), newlines
    too unless ``lines``, and markup brackets inert (a name ``[/]`` prints as written)."""
    from grammar.export import printable

    return escape(printable(str(text), one_line=not lines))


@contextlib.contextmanager
def user_errors(*extra: type[BaseException]):
    """Reports user errors in one line on stderr and exits with code 2."""
    try:
        yield
    except user_error_types() + extra as e:
        Console(stderr=True).print(f"[bold red]error:[/] {for_markup(e)}", highlight=False, soft_wrap=True)
        sys.exit(2)
