"""What the files of a run folder hold: for each, the fields its readers use, with their types.

A run folder may come from anywhere (a colleague, an archive, a hand edit), so the store
checks each file where it reads it (``RunStore.read``): a wrong field is a one-line error
naming the file and the field, not a traceback in whatever reads it later. A check takes
(value, where) and returns what is wrong, or None. Fields that no reader uses are not
checked; text holds no control characters (it reaches terminals), constants are named by
identifiers (they are printed in markup and exported as names).
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable

from discover.rows import scored_row

Check = Callable[[Any, str], "str | None"]
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def _kind(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true/false"
    if isinstance(v, float) and not math.isfinite(v):
        return repr(v)  # nan, inf
    if isinstance(v, int) and abs(v) > 10 ** 300:
        return f"an integer of {len(str(abs(v)))} digits"
    return {str: "text", int: "a number", float: "a number", list: "a list", dict: "an object"}.get(type(v), "?")


def _is(expected: str, test: Callable[[Any], bool]) -> Check:
    return lambda v, at: None if test(v) else f"{at} should be {expected}, not {_kind(v)}"


def _text(v, at: str) -> str | None:
    if not isinstance(v, str):
        return f"{at} should be text, not {_kind(v)}"
    bad = _CONTROL.search(v)
    return f"{at} holds the control character {bad.group()!r}" if bad else None


def _float_sized(v) -> bool:
    """A JSON number that fits a float (NaN and infinities included: failed scores are NaN);
    an integer of 400 digits does not, and breaks every formatting of it."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        float(v)
    except OverflowError:
        return False
    return True


NUMBER = _is("a number within float range", _float_sized)
FINITE = _is("a finite number", lambda v: _float_sized(v) and math.isfinite(float(v)))
INTEGER = _is("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool))


def _or_none(check: Check) -> Check:
    return lambda v, at: None if v is None else check(v, at)


def _one_of(*values: str) -> Check:
    return _is(" or ".join(repr(v) for v in values), lambda v: v in values)


def _list_of(item: Check) -> Check:
    def check(v, at):
        if not isinstance(v, list):
            return f"{at} should be a list, not {_kind(v)}"
        return next((bad for i, x in enumerate(v) if (bad := item(x, f"{at}[{i}]"))), None)
    return check


def _record(required: dict[str, Check], optional: dict[str, Check] | None = None) -> Check:
    """An object with the ``required`` fields, and the ``optional`` ones where present;
    other fields are not read, and not checked."""
    def check(v, at):
        if not isinstance(v, dict):
            return f"{at or 'the file'} should be an object, not {_kind(v)}"
        for fields, needed in ((required, True), (optional or {}, False)):
            for k, item in fields.items():
                where = f"{at}.{k}" if at else k
                if k not in v:
                    if needed:
                        return f"{where} is missing"
                elif bad := item(v[k], where):
                    return bad
        return None
    return check


def _constants(v, at: str) -> str | None:
    """Named constants: identifiers (they are printed and exported as names) to numbers."""
    if not isinstance(v, dict):
        return f"{at} should be an object, not {_kind(v)}"
    for k, x in v.items():
        if not _IDENTIFIER.fullmatch(k):
            return f"{at} has the name {_cut(k, 30)!r}, which is not an identifier"
        if bad := FINITE(x, f"{at}.{k}"):  # a constant is exported and printed: never NaN or infinite
            return bad
    return None


SCORES = _or_none(_list_of(_or_none(NUMBER)))
CONFIG = _record({
    "search": _record({"population": INTEGER, "generations": INTEGER}),
    "grammar_name": _text,
    "experiment": _record({}, {"dataset": _record({"task": _text, "setting": _text, "eps": NUMBER})}),
}, {"evaluator": _text})
FINAL_ROW = _record({
    "name": _text, "kind": _one_of("zoo", "discovered"), "fitness": _or_none(NUMBER), "constants": _constants,
    "complexity": NUMBER, "closed_form": _text, "latex": _text, "expression": _text,
}, {"spread": _or_none(NUMBER), "per_seed": SCORES, "reason": _or_none(_text), "search_fitness": _or_none(NUMBER),
    "search_seeds": _or_none(INTEGER), "derivation": _or_none(_text), "zoo_form": _or_none(_text),
    "key": _or_none(_text)})
SCORED_RECORD = {  # a candidate as the search logs it, scored or not
    "key": _text, "fitness": _or_none(NUMBER), "spread": _or_none(NUMBER), "complexity": NUMBER,
    "constants": _constants, "expression": _text, "closed_form": _text, "origin": _text,
}
SCORED_OPTIONAL = {"per_seed": SCORES, "derivation": _or_none(_text), "hash": _text}
HALL_OF_FAME = _record({
    "ranked": _list_of(_record({**SCORED_RECORD, "fitness": NUMBER}, SCORED_OPTIONAL)),
    "pareto": _list_of(_record({"complexity": NUMBER, "fitness": NUMBER, "closed_form": _text,
                                "expression": _text, "constants": _constants})),
}, {"structures": INTEGER})
CANDIDATE = _record({**SCORED_RECORD, "generation": INTEGER, "hash": _text}, SCORED_OPTIONAL)
CANDIDATE_GENERATION = _record({"generation": INTEGER})
CHECKPOINT = _record({"generation": INTEGER}, {"history": _list_of(_record(
    {"generation": INTEGER, "best_fitness": _or_none(NUMBER), "median": _or_none(NUMBER)}))})


def _training_curves(v, at: str) -> str | None:
    """Held-out training curves: each loss's (seeds, len(steps)) scores; {} where there are none."""
    if v == {}:
        return None
    if bad := _record({"steps": _list_of(NUMBER), "reference": NUMBER, "curves": _is("an object", lambda c: isinstance(
            c, dict))})(v, at):
        return bad
    for name, scores in v["curves"].items():
        where = f"{at}.curves.{_cut(name, 30)}"
        if bad := _list_of(_list_of(_or_none(NUMBER)))(scores, where):
            return bad
        if any(len(row) != len(v["steps"]) for row in scores):
            return f"{where} should have {len(v['steps'])} scores (one per step) in each row"
    return None


def _final(v, at: str) -> str | None:
    """final.json, its rows in either schema (see :func:`discover.rows.scored_row`)."""
    shape = _record({"rows": _is("a list", lambda r: isinstance(r, list)),
                     "reference": _record({"mean": NUMBER, "std": NUMBER}), "holdout_seeds": _list_of(INTEGER)},
                    {"training_curves": _or_none(_training_curves)})
    if bad := shape(v, at):
        return bad
    for i, row in enumerate(v["rows"]):
        where = f"rows[{i}]"
        if not isinstance(row, dict):
            return f"{where} should be an object, not {_kind(row)}"
        row = scored_row(row)
        if bad := FINAL_ROW(row, where):
            return bad
        if row["fitness"] is not None and row.get("spread") is None:
            return f"{where}.spread is missing (the row has a fitness)"
    return None


SHAPES: dict[str, Check] = {"config.json": CONFIG, "final.json": _final, "hall_of_fame.json": HALL_OF_FAME}
