"""The one-shot GPU check runs end to end on the CPU in its small mode."""

from __future__ import annotations

import importlib.util
import os

import pytest

pytestmark = pytest.mark.slow


def test_gpu_check_small_mode_on_cpu(tmp_path):
    path = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "gpu_check.py")
    spec = importlib.util.spec_from_file_location("gpu_check", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.main(["--size", "small", "--out", str(tmp_path)])
    text = open(out).read()
    assert "FAILED" not in text, text
    for fragment in ("parity", "MJX rollouts", "training runs (loss x seed) per hour", "generation 1 of",
                     "steady state (generations 1-1)", "candidate trainings (loss x seed) per hour including"):
        assert fragment in text
    rel = float(text.split("max relative difference ")[1].split()[0])
    assert rel < 1e-3
