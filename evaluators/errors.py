"""Errors a user can cause in the evaluators (reported in one line by the CLI)."""


class InputError(ValueError):
    """Unknown task or setting, bad budget, corrupt cache, missing policy files."""
