"""Where built data live: ``$MPO_DISCOVER_CACHE``, else the user's cache directory as
platformdirs names it (``~/.cache/mpo-discover`` on Linux, ``~/Library/Caches/mpo-discover``
on macOS, ``%LOCALAPPDATA%\\mpo-discover\\Cache`` on Windows)."""

from __future__ import annotations

import os

import platformdirs


def cache_dir() -> str:
    """``$MPO_DISCOVER_CACHE`` if set (tests set their own), else the user cache directory."""
    return os.environ.get("MPO_DISCOVER_CACHE") or platformdirs.user_cache_dir("mpo-discover", appauthor=False)
