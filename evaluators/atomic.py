"""Atomic file writes: a temporary file in the same directory, flushed, then renamed over
the target, so a reader (or a resumed run) never sees half a file. Used by every writer
of the project (datasets, policies, run stores, exports, plots)."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from typing import Any, Callable, IO

_UMASK_LOCK = threading.Lock()


def _file_mode() -> int:
    """0666 less the process's umask: the mode ``open`` would give a new file (mkstemp's
    temporary files are 0600, and a rename keeps that)."""
    with _UMASK_LOCK:  # os.umask can only be read by setting it
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def write_with(path: str, write: Callable[[IO[bytes]], None]) -> str:
    """Calls ``write(f)`` on a binary temporary file, then renames it to ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fchmod(f.fileno(), _file_mode())
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_bytes(path: str, data: bytes) -> str:
    """Writes ``data`` to ``path`` atomically; returns the path."""
    return write_with(path, lambda f: f.write(data))


def write_text(path: str, text: str) -> str:
    """Writes ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str, obj: Any) -> str:
    """Writes ``obj`` as indented JSON to ``path`` atomically (floats for NumPy scalars); returns
    the path."""
    return write_text(path, json.dumps(obj, indent=1, default=float) + "\n")
