"""The run store: ``results/<run>/``.

    config.json          search settings, the evaluator ("evaluator", default mujoco) and its
                         configuration ("experiment"), the grammar (written once)
    grammar.yaml         a copy of the grammar file
    candidates.jsonl     every candidate evaluated or rejected, one JSON object a line
    checkpoints/gen-NNNN.json   search state after generation NNNN
    hall_of_fame.json    best candidate per structure, Pareto front
    final.json           held-out re-scoring of the best and of the zoo baselines
    fitness.png, pareto.png

Every file is written atomically (a temporary file, then a rename), and the candidates
of a generation are appended before its checkpoint is written; on resume, candidates of
generations after the last checkpoint are dropped. A kill loses at most the generation
in flight.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Iterable

from discover.errors import RunError
from discover.rows import scored_row
from evaluators import atomic


atomic_write_text = atomic.write_text
atomic_write_json = atomic.write_json


def _read_json(path: str, what: str):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise RunError(f"{what} is missing: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunError(f"{what} is corrupt: {path} ({e.__class__.__name__} at line {getattr(e, 'lineno', '?')})") \
            from None


class RunStore:
    def __init__(self, path: str):
        self.path = path
        self.name = os.path.basename(os.path.normpath(path))

    # -- creation and lookup
    @staticmethod
    def create(results_dir: str, name: str, config: dict, grammar_path: str) -> "RunStore":
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise RunError(f"bad run name {name!r}: use letters, digits, '.', '_' and '-'")
        path = os.path.join(results_dir, name)
        if os.path.exists(os.path.join(path, "config.json")):
            raise RunError(f"run {name!r} already exists in {results_dir}; resume it with "
                           f"`discover run --resume {name}` or choose another --name")
        store = RunStore(path)
        os.makedirs(os.path.join(path, "checkpoints"), exist_ok=True)
        with open(grammar_path) as f:
            atomic_write_text(os.path.join(path, "grammar.yaml"), f.read())
        atomic_write_json(os.path.join(path, "config.json"), config)
        return store

    @staticmethod
    def open(name_or_path: str, results_dir: str = "results") -> "RunStore":
        candidates = [name_or_path, os.path.join(results_dir, name_or_path)]
        for c in candidates:
            if os.path.isfile(os.path.join(c, "config.json")):
                return RunStore(c)
        known = []
        if os.path.isdir(results_dir):
            known = sorted(d for d in os.listdir(results_dir)
                           if os.path.isfile(os.path.join(results_dir, d, "config.json")))
        hint = f" (runs: {', '.join(known)})" if known else f" (no runs under {results_dir}/)"
        raise RunError(f"no run named {name_or_path!r}{hint}")

    # -- files
    def file(self, *parts: str) -> str:
        return os.path.join(self.path, *parts)

    def config(self) -> dict:
        return _read_json(self.file("config.json"), "run configuration")

    def append_candidates(self, records: Iterable[dict]) -> None:
        lines = "".join(json.dumps(r, default=float) + "\n" for r in records)
        with open(self.file("candidates.jsonl"), "a") as f:
            f.write(lines)
            f.flush()
            os.fsync(f.fileno())

    def candidates(self, up_to_generation: int | None = None, latest: bool = True) -> list[dict]:
        """The logged candidates of generations up to ``up_to_generation``. An elite re-trained on
        fresh seeds is logged again with its merged scores; ``latest`` keeps only its last record
        (in the position of its first)."""
        path = self.file("candidates.jsonl")
        if not os.path.exists(path):
            return []
        out = []
        with open(path) as f:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    # a torn last line from a kill mid-write is dropped; anything else is corruption
                    rest = f.read()
                    if rest.strip():
                        raise RunError(f"candidate log is corrupt at line {i}: {path}") from None
                    break
                if up_to_generation is None or rec["generation"] <= up_to_generation:
                    out.append(rec)
        if latest:
            by_key: dict[str, dict] = {}
            for rec in out:
                by_key[rec.get("key")] = rec
            out = list(by_key.values())
        return out

    def truncate_candidates(self, up_to_generation: int) -> None:
        """Drops candidates of generations after ``up_to_generation`` (resume after a kill)."""
        keep = self.candidates(up_to_generation, latest=False)
        atomic_write_text(self.file("candidates.jsonl"), "".join(json.dumps(r, default=float) + "\n" for r in keep))

    def write_checkpoint(self, generation: int, state: dict) -> None:
        atomic_write_json(self.file("checkpoints", f"gen-{generation:04d}.json"), state)

    def latest_checkpoint(self) -> dict | None:
        directory = self.file("checkpoints")
        if not os.path.isdir(directory):
            return None
        names = sorted(n for n in os.listdir(directory) if re.fullmatch(r"gen-\d{4}\.json", n))
        if not names:
            return None
        state = _read_json(os.path.join(directory, names[-1]), "checkpoint")
        if not isinstance(state, dict) or "generation" not in state:
            raise RunError(f"checkpoint is corrupt: {os.path.join(directory, names[-1])} (no generation)")
        return state

    def write(self, name: str, obj: Any) -> None:
        atomic_write_json(self.file(name), obj)

    def read(self, name: str, what: str | None = None):
        return _read_json(self.file(name), what or name)

    def final(self, what: str = "final results") -> dict:
        """final.json with its rows in the scored-row schema that bench rows share
        (``fitness``, ``spread``, ``per_seed``); runs written before it, which named these
        ``heldout_mean``, ``heldout_std`` and ``heldout_per_seed``, read the same."""
        final = self.read("final.json", what)
        final["rows"] = [scored_row(r) for r in final["rows"]]
        return final

    def has(self, name: str) -> bool:
        return os.path.exists(self.file(name))
