"""Errors a user can cause with a grammar file or an expression (reported in one line)."""

from __future__ import annotations


class GrammarError(ValueError):
    """A bad grammar file or expression. ``str()`` is the one-line report."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line

    def located(self, file: str | None = None, line: int | None = None) -> "GrammarError":
        """The same error with a file and line added where it had none."""
        return GrammarError(self.message, self.file or file, self.line or line)

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        return where + self.message
