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
from discover.run_schema import CANDIDATE, CANDIDATE_GENERATION, CHECKPOINT, SHAPES, Check
from evaluators import atomic


atomic_write_text = atomic.write_text
atomic_write_json = atomic.write_json

RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_RUN_NAME = 100  # a folder name; file systems stop at 255 bytes


def run_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a run (it is a folder name, printed in tables, titles and
    exported code), or None."""
    if len(name) > MAX_RUN_NAME:
        return f"is longer than {MAX_RUN_NAME} characters"
    if not RUN_NAME.fullmatch(name):
        return "has characters other than letters, digits, '.', '_' and '-' (or starts with one of '.', '_', '-')"
    return None


def cut(text: str, width: int = 60) -> str:
    """``text`` shortened to ``width`` characters for an error line."""
    return text if len(text) <= width else text[:width - 3] + "..."


def _read_json(path: str, what: str, shape: Check | None = None):
    try:
        with open(path) as f:
            obj = json.load(f)
    except FileNotFoundError:
        raise RunError(f"{what} is missing: {path}") from None
    except IsADirectoryError:
        raise RunError(f"{what} is not a file: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunError(f"{what} is corrupt: {path} ({e.__class__.__name__} at line {getattr(e, 'lineno', '?')})") \
            from None
    except (ValueError, RecursionError) as e:  # a 5,000-digit number; arrays nested thousands deep
        raise RunError(f"{what} is corrupt: {path} ({cut(str(e) or e.__class__.__name__)})") from None
    if shape is not None and (bad := shape(obj, "")):
        raise RunError(f"{what} is corrupt: {path} ({bad})")
    return obj


def _expressions_parse(rows: list, where: str, path: str, what: str) -> None:
    """Every row's expression parses (its text is read back when shown or exported)."""
    from discover.records import expression_of
    from grammar.errors import GrammarError

    for i, row in enumerate(rows):
        try:
            expression_of(row)
        except (GrammarError, RunError) as e:
            message = e.message if isinstance(e, GrammarError) else str(e)
            raise RunError(f"{what} is corrupt: {path} ({where}[{i}].expression: {message})") from None


class RunStore:
    """One run's folder: its configuration, grammar, candidate log, checkpoints and results,
    every file written atomically and checked where it is read."""
    def __init__(self, path: str):
        self.path = path
        self.name = os.path.basename(os.path.normpath(path))

    # -- creation and lookup
    @staticmethod
    def create(results_dir: str, name: str, config: dict, grammar_path: str) -> "RunStore":
        """A new run folder ``results_dir/name`` with its configuration and grammar; a
        :class:`RunError` for a bad name or a run that already exists."""
        problem = run_name_problem(name)
        if problem:
            raise RunError(f"bad run name {cut(name)!r}: it {problem}; use letters, digits, '.', '_' and '-', "
                           f"at most {MAX_RUN_NAME} characters")
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
        """The run at a path or named under ``results_dir``; a :class:`RunError` listing the
        runs there when there is none."""
        candidates = [name_or_path, os.path.join(results_dir, name_or_path)]
        for c in candidates:
            if os.path.isfile(os.path.join(c, "config.json")):
                name = os.path.basename(os.path.abspath(c))
                problem = run_name_problem(name)
                if problem:
                    raise RunError(f"bad run folder {cut(c)!r}: its name {problem}; rename it with letters, "
                                   f"digits, '.', '_' and '-' (at most {MAX_RUN_NAME} characters)")
                return RunStore(c)
        known = []
        if os.path.isdir(results_dir):
            known = sorted(d for d in os.listdir(results_dir)
                           if os.path.isfile(os.path.join(results_dir, d, "config.json")))
        hint = f" (runs: {', '.join(known)})" if known else f" (no runs under {results_dir}/)"
        if os.path.isdir(name_or_path):
            raise RunError(f"{cut(name_or_path)!r} is a folder but not a run folder (it has no config.json){hint}")
        raise RunError(f"no run named {cut(name_or_path)!r}{hint}")

    # -- files
    def file(self, *parts: str) -> str:
        """The path of one of the run's files."""
        return os.path.join(self.path, *parts)

    def config(self) -> dict:
        """config.json: the search's, the evaluator's and the grammar's configuration."""
        return self.read("config.json", "run configuration")

    def evaluator_config(self):
        """(evaluator name, its configuration) of the run, from config.json; a :class:`RunError`
        naming the file where the stored configuration does not build."""
        from evaluators import registry

        cfg = self.config()
        name = registry.of_store(cfg)
        try:
            return name, registry.config_from_dict(name, cfg["experiment"])
        except (TypeError, KeyError, ValueError, AttributeError) as e:  # fields of another version or a hand edit
            raise RunError(f"run configuration is corrupt: {self.file('config.json')} (experiment: "
                           f"{cut(str(e) or e.__class__.__name__, 120)})") from None

    def append_candidates(self, records: Iterable[dict]) -> None:
        """Appends candidate records to candidates.jsonl (flushed to disk before returning)."""
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
                except (ValueError, RecursionError):
                    raise RunError(f"candidate log is corrupt at line {i}: {path}") from None
                # records past the generation asked for (a generation killed half-logged, which
                # a resume truncates) are not read, and so not checked beyond their generation
                if bad := CANDIDATE_GENERATION(rec, ""):
                    raise RunError(f"candidate log is corrupt at line {i}: {path} ({bad})")
                if up_to_generation is not None and rec["generation"] > up_to_generation:
                    continue
                if bad := CANDIDATE(rec, ""):
                    raise RunError(f"candidate log is corrupt at line {i}: {path} ({bad})")
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
        """Writes the search state after ``generation`` as checkpoints/gen-NNNN.json."""
        atomic_write_json(self.file("checkpoints", f"gen-{generation:04d}.json"), state)

    def latest_checkpoint(self) -> dict | None:
        """The last checkpoint's search state, or None before the first generation ended."""
        directory = self.file("checkpoints")
        if not os.path.isdir(directory):
            return None
        names = sorted(n for n in os.listdir(directory) if re.fullmatch(r"gen-\d{4}\.json", n))
        if not names:
            return None
        return _read_json(os.path.join(directory, names[-1]), "checkpoint", CHECKPOINT)

    def write(self, name: str, obj: Any) -> None:
        """Writes one of the run's JSON files atomically."""
        atomic_write_json(self.file(name), obj)

    def read(self, name: str, what: str | None = None):
        """A JSON file of the run; config.json, final.json and hall_of_fame.json checked for
        the fields their readers use (a :class:`RunError` naming the file and the field)."""
        path = self.file(name)
        what = what or name
        obj = _read_json(path, what, SHAPES.get(name))
        if name == "final.json":
            _expressions_parse([r for r in obj["rows"] if r["kind"] == "discovered"], "rows", path, what)
        elif name == "hall_of_fame.json":
            _expressions_parse(obj["ranked"], "ranked", path, what)
        return obj

    def hall_of_fame(self, what: str = "hall of fame") -> dict:
        """hall_of_fame.json: the best losses found, ranked by search fitness."""
        return self.read("hall_of_fame.json", what)

    def final(self, what: str = "final results") -> dict:
        """final.json with its rows in the scored-row schema that bench rows share
        (``fitness``, ``spread``, ``per_seed``); runs written before it, which named these
        ``heldout_mean``, ``heldout_std`` and ``heldout_per_seed``, read the same."""
        final = self.read("final.json", what)
        final["rows"] = [scored_row(r) for r in final["rows"]]
        return final

    def has(self, name: str) -> bool:
        """Whether the run has the file ``name``."""
        return os.path.exists(self.file(name))
