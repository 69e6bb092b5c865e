"""User errors across the project, how the CLI reports them, and how text read from files
(grammars, run folders) is made safe to print."""

from __future__ import annotations

import contextlib
import re
import sys

from rich.console import Console
from rich.markup import escape

from grammar.errors import GrammarError

# Control characters would reach the terminal raw (escape sequences, carriage returns), and
# bidirectional overrides make printed text read differently from what it is.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


class RunError(ValueError):
    """A bad run request: unknown or corrupt run, impossible budget (a user error)."""


def user_error_types() -> tuple[type[BaseException], ...]:
    from evaluators.errors import InputError

    return (GrammarError, InputError, RunError)


def printable(text, lines: bool = False) -> str:
    """``text`` (from a file or the command line) safe to write to a terminal: control
    characters and bidirectional overrides escaped as Python writes them (``\\x1b``);
    newlines and tabs kept when ``lines``, for multi-line text such as a description."""
    pattern = _CONTROL_BUT_LINES if lines else _CONTROL
    return pattern.sub(lambda m: repr(m.group())[1:-1], str(text))


def for_markup(text, lines: bool = False) -> str:
    """``text`` safe to put into a rich markup string (``f"[bold]{for_markup(name)}[/]"``):
    :func:`printable`, with markup escaped (a name ``[/]`` prints as written)."""
    return escape(printable(text, lines))


@contextlib.contextmanager
def user_errors(*extra: type[BaseException]):
    """Reports user errors in one line on stderr and exits with code 2."""
    try:
        yield
    except user_error_types() + extra as e:
        Console(stderr=True).print(f"[bold red]error:[/] {for_markup(e)}", highlight=False, soft_wrap=True)
        sys.exit(2)
