"""Shapes chosen for the device: batches padded to a few sizes, so that a compiled program
serves many batch sizes (a search's populations shrink and grow between successive
halving's rungs, re-evaluations and the final re-scoring; datasets differ a little in
their live steps)."""

from __future__ import annotations


def bucket(n: int, multiple: int = 1, least: int = 1) -> int:
    """The padded size of a batch of ``n`` rows: the next of 2^k x (1, 1.25, 1.5, 1.75), at
    most 25% padding (above ``least`` and 8 rows), at least ``least`` (small batches share
    one size), rounded up to a multiple of ``multiple`` (e.g. the number of devices a batch
    is split over)."""
    n = max(n, least)
    top = 1 << max(n - 1, 1).bit_length()
    size = min(s for s in (top // 2, top * 5 // 8, top * 3 // 4, top * 7 // 8, top) if s >= n)
    return -(-size // multiple) * multiple
