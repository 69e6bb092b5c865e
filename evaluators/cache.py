"""Where built data live: ``$MPO_DISCOVER_CACHE`` or ``~/.cache/mpo-discover``."""

from __future__ import annotations

import os


def cache_dir() -> str:
    """``$MPO_DISCOVER_CACHE`` or ``~/.cache/mpo-discover``."""
    return os.environ.get("MPO_DISCOVER_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "mpo-discover"))
