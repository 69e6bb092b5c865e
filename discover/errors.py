"""User errors across the project, and how the CLI reports them."""

from __future__ import annotations

import contextlib
import sys

from rich.console import Console
from rich.markup import escape

from grammar.errors import GrammarError


class RunError(ValueError):
    """A bad run request: unknown or corrupt run, impossible budget (a user error)."""


def user_error_types() -> tuple[type[BaseException], ...]:
    from evaluators.errors import InputError

    return (GrammarError, InputError, RunError)


@contextlib.contextmanager
def user_errors(*extra: type[BaseException]):
    """Reports user errors in one line on stderr and exits with code 2."""
    try:
        yield
    except user_error_types() + extra as e:
        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        sys.exit(2)
