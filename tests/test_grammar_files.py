"""Grammar files: the shipped grammars load; every kind of bad file is one clear error."""

from __future__ import annotations

import textwrap

import pytest

from grammar import load as load_grammar
from grammar.errors import GrammarError

GOOD = """\
start: Loss
primitives: [softplus]
constants:
  beta: {default: 0.1, low: 0.01, high: 10.0, scale: log}
nonterminals:
  Loss:
    productions:
      - "Link(beta * (logp_w - logp_l))"
  Link:
    params: [z]
    productions:
      - {name: logistic, expr: "softplus(-z)"}
"""


def load_text(tmp_path, text: str):
    path = tmp_path / "g.yaml"
    path.write_text(textwrap.dedent(text))
    return load_grammar(str(path))


def test_shipped_grammars_load(mirror, free):
    assert mirror.start == "Loss" and {"Link", "Mirror", "Psi"} <= set(mirror.nonterminals)
    assert mirror.nonterminals["Mirror"].params == ("x",)
    assert mirror.nonterminals["Mirror"].increasing is not None
    assert free.start == "Loss"


def test_found_by_name_and_path(mirror):
    assert load_grammar("mirror").name == "mirror"
    assert load_grammar(mirror.path).name == "mirror"


def test_minimal_grammar_loads(tmp_path):
    g = load_text(tmp_path, GOOD)
    assert list(g.nonterminals) == ["Loss", "Link"]


BAD = {
    "malformed YAML": ("start: Loss\nnonterminals: [a, b\n", "malformed YAML", 3),
    "empty file": ("", "empty grammar file", None),
    "tab": ("start: Loss\nnonterminals:\n\tLoss: {}\n", "tab in indentation", 3),
    "unknown primitive": (GOOD.replace("[softplus]", "[softplus, frobnicate]"), "unknown primitive 'frobnicate'", 2),
    "unknown terminal": (GOOD.replace("logp_w - logp_l", "logp_w - logp_x"), "unknown name 'logp_x'", 8),
    "terminal list": ("terminals: [logp_w, bogus]\n" + GOOD, "unknown terminal 'bogus'", 1),
    "type mismatch call": (GOOD.replace("Link(beta * (logp_w - logp_l))", "Link"), "type mismatch", 8),
    "type mismatch arity": (GOOD.replace("Link(beta * (logp_w - logp_l))", "Link(1, 2)"), "takes 1 argument", 8),
    "scalar called": (GOOD.replace("softplus(-z)", "beta(z)"), "type mismatch", 12),
    "inverted bounds": (GOOD.replace("low: 0.01, high: 10.0", "low: 10.0, high: 0.01"), "inverted", 4),
    "default outside": (GOOD.replace("default: 0.1", "default: 50"), "outside", 4),
    "log scale": (GOOD.replace("low: 0.01", "low: -1.0").replace("default: 0.1", "default: 0.5"), "log scale", 4),
    "unknown section": ("colour: blue\n" + GOOD, "unknown section 'colour'", 1),
    "missing start": (GOOD.replace("start: Loss\n", ""), "missing required section 'start'", 1),
    "bad start": (GOOD.replace("start: Loss", "start: Nope"), "start symbol 'Nope'", 1),
    "unparsable production": (GOOD.replace("softplus(-z)", "softplus(-z"), "production Link.logistic", 12),
    "empty production": (GOOD.replace('"softplus(-z)"', '""'), "empty expression", 12),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_file_is_one_located_error(tmp_path, case):
    text, fragment, line = BAD[case]
    with pytest.raises(GrammarError) as info:
        load_text(tmp_path, text)
    message = str(info.value)
    assert fragment in message
    assert message.startswith(str(tmp_path / "g.yaml")) or "g.yaml" in message
    if line is not None:
        assert info.value.line == line, message
    assert "\n" not in message


def test_cyclic_nonterminal(tmp_path):
    text = GOOD + "  Loop:\n    productions:\n      - \"Loop + 1\"\n"
    text = text.replace('"Link(beta * (logp_w - logp_l))"', '"Link(beta * (logp_w - logp_l)) + Loop"')
    with pytest.raises(GrammarError, match="Loop is cyclic"):
        load_text(tmp_path, text)


def test_unreachable_nonterminal(tmp_path):
    text = GOOD + "  Orphan:\n    productions:\n      - \"1\"\n"
    with pytest.raises(GrammarError, match="Orphan is unreachable"):
        load_text(tmp_path, text)


def test_missing_file():
    with pytest.raises(GrammarError, match="grammar file not found"):
        load_grammar("/nonexistent/grammar.yaml")


def test_seed_must_derive(tmp_path):
    text = GOOD + "seeds:\n  dpo: nope\n"
    with pytest.raises(GrammarError, match="seed dpo"):
        load_text(tmp_path, text)
