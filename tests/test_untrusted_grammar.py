"""Grammar files are untrusted input (shared, or carried by a run folder): whatever a file
holds, loading it gives a grammar or one located GrammarError, quickly and in little
memory; never a traceback, a hang, code run or raw control characters on the terminal."""

from __future__ import annotations

import os
import pathlib
import re
import tracemalloc

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import grammar
from grammar import language
from grammar.errors import GrammarError
from test_cli import assert_user_error, in_process

BASE = """\
name: probe
description: a grammar with every section
start: Loss
terminals: [logp_w, logp_l, ref_w, ref_l, len_w, len_l, t]
primitives: [softplus, exp, log]
constants:
  beta: {default: 0.1, low: 0.01, high: 10.0, scale: log, doc: inverse temperature}
definitions:
  r_w: logp_w - ref_w
  r_l: logp_l - ref_l
nonterminals:
  Loss:
    doc: the loss
    productions:
      - {name: main, expr: "Link(beta * (Mirror(r_w) - Mirror(r_l)))", weight: 2, doc: the template}
  Link:
    params: [z]
    productions:
      - {name: logistic, expr: "softplus(-z)"}
      - {name: exponential, expr: "exp(-z)"}
  Mirror:
    params: [x]
    increasing: {domain: [-20.0, -0.01]}
    productions:
      - {name: identity, expr: "x"}
limits: {max_depth: 5, max_size: 64}
constraints:
  forbid_nesting: [[exp, log]]
seeds:
  dpo: main(Link=logistic, Mirror=identity)
"""

# Each line of "billion laughs" repeats the previous one nine times: 9^9 strings from
# 400 bytes, which anything that copies the shared aliases (str(), a printer) expands.
LAUGHS = ('lol0: &lol0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
          + "".join(f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 9)}]\n" for i in range(1, 9))
          + "name: *lol8\ndescription: *lol8\n" + BASE.replace("name: probe\n", "").replace(
              "description: a grammar with every section\n", ""))

MANY = 300  # above every cap on a number of entries
BIG = "9" * 400


def edit(old: str, new: str, text: str = BASE) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def production(expr: str) -> str:
    return edit('"softplus(-z)"', f'"{expr}"')


def refused(text: str) -> GrammarError:
    """The error loading ``text`` gives (seeds included), checked to be one line."""
    with pytest.raises(GrammarError) as info:
        grammar.loads(text, "probe.yaml")
    message = str(info.value)
    assert "\n" not in message and message.startswith("probe.yaml"), message
    return info.value


def test_base_grammar_loads():
    g = grammar.loads(BASE)
    assert g.name == "probe" and g.nonterminals["Mirror"].increasing == (-20.0, -0.01)
    assert g.seeds == {"dpo": "main(Link=logistic, Mirror=identity)"}


BAD = {
    # YAML features a grammar does not need, and that run code or multiply memory
    "alias": (edit("start: Loss", "start: *Loss"), "YAML aliases (*Loss) are not allowed"),
    "anchor": (edit("start: Loss", "start: &s Loss"), "YAML anchors (&s) and aliases are not allowed"),
    "python tag": (edit("name: probe", "name: !!python/object/apply:os.system [echo hi]"), "YAML tags"),
    "python name": (edit("name: probe", "name: !!python/name:os.system"), "YAML tags"),
    "int tag": (edit("max_depth: 5", 'max_depth: !!int "five"'), "YAML tags"),
    "set tag": (edit("primitives: [softplus, exp, log]", "primitives: !!set {softplus}"), "YAML tags"),
    "deep flow": (edit("start: Loss", "start: " + "[" * 5000 + "]" * 5000), "nested more than 32 levels"),
    "deep block": (edit("start: Loss", "start:\n" + "".join(" " * i + "- \n" for i in range(1, 60))),
                   "nested more than 32 levels"),
    "list key": (edit("start: Loss", "? [a, b]\n: 1\nstart: Loss"), "a key must be a name"),
    "mapping key": (edit("start: Loss", "start: Loss\n{a: 1}: 2"), "a key must be a name"),
    "duplicate key": (edit("start: Loss", "start: Loss\nstart: Loss"), "duplicate key 'start'"),
    "unknown section": ("colour: blue\n" + BASE, "unknown section 'colour'"),
    "tab": (edit("    doc: the loss", "\tdoc: the loss"), "tab in indentation"),
    # sizes
    "long description": (edit("a grammar with every section", "x" * 10_001), "at most 10000"),
    "long doc": (edit("doc: the loss", "doc: " + "x" * 10_001), "at most 10000"),
    "long constant doc": (edit("doc: inverse temperature", "doc: " + "x" * 10_001), "at most 10000"),
    "long production": (production("z" + " + z" * 600), "characters (at most 2000)"),
    "long seed": (edit("Mirror=identity)", "Mirror=identity" + " " * 2000 + ")"), "at most 2000"),
    "deep expression": (production("-" * 1500 + "z"), "nested too deeply"),
    "deep calls": (production("exp(" * 40 + "z" + ")" * 40), "nested 41 levels deep"),
    "definitions doubling": (edit("  r_l: logp_l - ref_l\n", "  r_l: logp_l - ref_l\n  d0: r_w\n" + "".join(
        f"  d{i}: d{i - 1} + d{i - 1}\n" for i in range(1, 64))), "definition d9: expression of 2047 nodes"),
    "many nonterminals": (edit("  Mirror:\n", "".join(f"  N{i}:\n    productions: ['1']\n" for i in range(MANY))
                               + "  Mirror:\n"), "'nonterminals' has 303 entries (at most 256)"),
    "many productions": (edit('      - {name: identity, expr: "x"}',
                              "\n".join(f"      - {{name: p{i}, expr: x}}" for i in range(MANY))), "at most 256"),
    "many constants": (edit("constants:\n", "constants:\n" + "".join(
        f"  c{i}: {{low: 0, high: 1}}\n" for i in range(MANY))), "'constants' has 301 entries"),
    "many seeds": (BASE + "".join(f"  s{i}: main(Link=logistic, Mirror=identity)\n" for i in range(MANY)),
                   "'seeds' has 301 entries"),
    "many params": (edit("params: [z]", f"params: [{', '.join(f'z{i}' for i in range(9))}]"), "at most 8"),
    "max_depth too large": (edit("max_depth: 5", "max_depth: 1000"),
                            "limits.max_depth must be an integer from 1 to 12"),
    "max_size too large": (edit("max_size: 64", "max_size: 1000000"), "limits.max_size must be an integer from 1 to"),
    "max_size bool": (edit("max_size: 64", "max_size: true"), "limits.max_size must be an integer"),
    "seed deeper than max_depth": (edit("max_depth: 5", "max_depth: 1"), "seed dpo is deeper than limits.max_depth"),
    # names
    "grammar name quotes": (edit("name: probe", "name: 'x\"\"\"'"), "grammar name"),
    "grammar name newline": (edit("name: probe", 'name: "a\\nb"'), "grammar name 'a\\nb' must be an ASCII"),
    "grammar name markup": (edit("name: probe", "name: '[/]'"), "grammar name '[/]' must be an ASCII identifier"),
    "grammar name path": (edit("name: probe", "name: ../../etc"), "grammar name"),
    "grammar name number": (edit("name: probe", "name: 12"), "grammar name must be a string, not 12"),
    "production name": (edit("name: logistic", "name: 'a b'"), "production name of Link 'a b'"),
    "production name quotes": (edit("name: logistic", "name: '\"\"\"'"), "production name of Link"),
    "production name number": (edit("name: logistic", "name: 3"), "production name of Link must be a string, not 3"),
    "production name list": (edit("name: logistic", "name: [a]"),
                             "production name of Link must be a string, not a list"),
    "constant keyword": (edit("  beta: {", "  lambda: {").replace("beta", "lambda"), "is a Python keyword"),
    "constant progress": (edit("  beta: {", "  progress: {").replace("beta *", "progress *"),
                          "would shadow a name that exported losses use"),
    "constant jnp": (edit("  beta: {", "  jnp: {").replace("beta *", "jnp *"), "would shadow"),
    "constant builtin": (edit("  beta: {", "  sum: {").replace("beta *", "sum *"), "would shadow"),
    "constant underscore": (edit("  beta: {", "  _b: {").replace("beta *", "_b *"), "starts with an underscore"),
    "nonterminal keyword": (edit("  Mirror:", "  class:"), "nonterminal name 'class' is a Python keyword"),
    "nonterminal dash": (edit("  Mirror:", "  Mir-ror:"), "nonterminal name 'Mir-ror' must be an ASCII"),
    "definition name": (edit("  r_l: logp_l", "  'r l': logp_l"), "definition name 'r l'"),
    "seed name": (edit("  dpo: main", "  'dpo()': main"), "seed name 'dpo()'"),
    "seed name newline": (edit("  dpo: main", '  "a\\nb": main'), "seed name 'a\\nb'"),
    "param name": (edit("params: [z]", "params: ['z z']"), "parameter of Link 'z z'"),
    "param number": (edit("params: [z]", "params: [1]"), "parameter of Link must be a string, not 1"),
    "param repeated": (edit("params: [x]", "params: [x, x]"), "repeated parameter name"),
    # numbers
    "400 digits low": (edit("low: 0.01", f"low: {BIG}"), "a number of 400 characters (at most 64)"),
    "400 digits weight": (edit("weight: 2", f"weight: {BIG}"), "a number of 400 characters"),
    "400 digits domain": (edit("-20.0", f"-{BIG}"), "a number of 401 characters"),
    "5000 digits": (edit("max_size: 64", "max_size: " + "9" * 5000), "a number of 5000 characters"),
    "base 60": (edit("max_size: 64", "max_size: " + ":".join(["1"] * 5000)), "a number of 9999 characters"),
    "overflowing float": (edit("high: 10.0", "high: 1.0e999"), "high must be a finite number, not inf"),
    "infinite bound": (edit("high: 10.0", "high: .inf"), "high must be a finite number"),
    "nan default": (edit("default: 0.1", "default: .nan"), "default must be a finite number"),
    "bool bound": (edit("low: 0.01", "low: true"), "low must be a number, not True"),
    "string bound": (edit("low: 0.01", "low: '0.01'"), "low must be a number, not '0.01'"),
    "bounds too far apart": (edit("low: 0.01, high: 10.0, scale: log", "low: -1.0e308, high: 1.0e308"),
                             "too far apart"),
    "infinite weight": (edit("weight: 2", "weight: .inf"), "weight must be a finite number"),
    "huge weight": (edit("weight: 2", "weight: 1.0e300"), "weight must be positive and at most 1e+06"),
    "zero weight": (edit("weight: 2", "weight: 0"), "weight must be positive"),
    "bool weight": (edit("weight: 2", "weight: yes"), "weight must be a number, not True"),
    "infinite domain": (edit("-20.0", "-.inf"), "'increasing' domain must be a finite number"),
    "bool domain": (edit("-20.0", "false"), "'increasing' domain must be a number, not False"),
    "string domain": (edit("-20.0", "low"), "'increasing' domain must be a number, not 'low'"),
    "impossible date": (edit("max_size: 64", "max_size: 2024-13-01"), "limits.max_size must be an integer"),
    # types
    "list start": (edit("start: Loss", "start: [Loss]"), "start symbol a list is not a nonterminal"),
    "mapping start": (edit("start: Loss", "start: {Loss: 1}"), "start symbol a mapping"),
    "number terminal": (edit("ref_l, len_w", "ref_l, 5, len_w"), "unknown terminal 5"),
    "list terminal": (edit("ref_l, len_w", "ref_l, [len_w]"), "unknown terminal a list"),
    "mapping primitive": (edit("[softplus, exp, log]", "[softplus, {exp: 1}, log]"), "unknown primitive a mapping"),
    "list seed": (edit("dpo: main(Link=logistic, Mirror=identity)", "dpo: [main]"), "seed dpo must be a derivation"),
    "unbalanced seed": (edit("Mirror=identity)", "Mirror=identity"), "seed dpo: unbalanced parentheses"),
    "list doc": (edit("doc: the loss", "doc: [the, loss]"), "nonterminal Loss: doc must be text, not a list"),
    "number doc": (edit("doc: the template", "doc: 5"), "production Loss.main: doc must be text, not 5"),
    "number description": (edit("a grammar with every section", "2024"), "description must be text"),
    "list expression": (edit('"softplus(-z)"', "[z]"), "must be an expression string, not a list"),
    "bool expression": (edit('"softplus(-z)"', "yes"), "must be an expression string, not True"),
    "list forbid_nesting": (edit("[[exp, log]]", "[[exp, [log]]]"), "forbid_nesting entries are [outer, inner]"),
    "unknown increasing field": (edit("{domain: [-20.0, -0.01]}", "{domain: [-20.0, -0.01], strict: 1}"),
                                 "unknown field 'strict'"),
    "mixed unknown fields": (edit("default: 0.1,", "default: 0.1, 1: 2, zz: 3,"), "unknown field 1"),
    # text that would reach the terminal raw
    "escape in description": (edit("a grammar with every section", '"\\e[2J\\e[31mred"'), "control character '\\x1b'"),
    "carriage return in doc": (edit("doc: the loss", 'doc: "fine\\roverwritten"'), "control character '\\r'"),
    "C1 control in doc": (edit("doc: inverse temperature", 'doc: "a\\x9bb"'), "control character '\\x9b'"),
    "bell in production doc": (edit("doc: the template", 'doc: "\\a"'), "control character '\\x07'"),
    # expressions that are no real, finite function (sympy folds them to zoo or I*pi)
    "division by zero": (production("z / 0"), "production Link.logistic: z / 0 is infinite or undefined"),
    "log of a negative number": (production("log(-1 + 0*z)"), "log(-1 + 0*z) is not real"),
    "inside a nonterminal's argument": (edit('"Link(beta * (Mirror(r_w) - Mirror(r_l)))"',
                                              '"Link(beta / 0 * (Mirror(r_w) - Mirror(r_l)))"'),
                                         "production Loss.main: Link(beta / 0 * (Mirror(r_w) - Mirror... is infinite"),
    "undefined definition": (edit("r_l: logp_l - ref_l", "r_l: logp_l / (ref_l - ref_l)"),
                             "definition r_l: logp_l / (ref_l - ref_l) is infinite or undefined"),
    "carriage return in production": (production("z\\r+ z"), "production Link.logistic contains the control"),
    "unit separator in seed": (edit("dpo: main(Link=logistic, Mirror=identity)",
                                      'dpo: "main(Link=logistic,\\x1f Mirror=identity)"'),
                                 "seed dpo contains the control character '\\x1f'"),
    "right-to-left override": (edit("a grammar with every section", '"abc\\u202edef"'), "control character"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_located_error(case):
    text, fragment = BAD[case]
    error = refused(text)
    assert fragment in error.message, str(error)


def test_tab_and_newline_are_fine_in_text():
    g = grammar.loads(edit("description: a grammar with every section", 'description: "one\\ttwo\\nthree"'))
    assert g.description == "one\ttwo\nthree"


def test_an_exponent_without_a_point_is_a_number():  # YAML 1.1 reads 1e-2 as text
    g = grammar.loads(edit("low: 0.01", "low: 1e-2"))
    assert g.constants["beta"].low == 0.01


def test_a_grammar_without_a_name_is_named_after_its_file(tmp_path):
    path = tmp_path / "my-grammar.v2.yaml"
    path.write_text(BASE.replace("name: probe\n", ""))
    assert grammar.load(str(path)).name == "my_grammar_v2"
    assert grammar.loads(BASE.replace("name: probe\n", "")).name == "string"  # shown as <string>


def test_billion_laughs_fails_at_once_in_little_memory():
    tracemalloc.start()  # the expansion, not the time, is what a laughs file attacks: memory shows it
    try:
        error = refused(LAUGHS)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "YAML anchors (&lol0) and aliases are not allowed" in str(error) and error.line == 1
    assert peak < 5_000_000


def test_file_too_large_is_refused_before_parsing(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text(BASE + "# " + "x" * language.MAX_FILE_BYTES + "\n")
    with pytest.raises(GrammarError, match="larger than 256 KiB"):
        grammar.load(str(path))
    with pytest.raises(GrammarError, match="larger than 256 KiB"):
        grammar.loads(BASE.replace("a grammar with every section", "x" * 10_000_000))


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(BASE.replace("every section", "caf\xe9").encode("latin-1"))
    with pytest.raises(GrammarError, match="not UTF-8 text"):
        grammar.load(str(path))


def test_python_tag_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    text = edit("name: probe", f"name: !!python/object/apply:os.system ['touch {marker}']")
    refused(text)
    assert not os.path.exists(marker)


# --------------------------------------------------------------------------- the command line
@pytest.fixture
def cli(tmp_path):
    return lambda *args: in_process(*args, cwd=tmp_path)


@pytest.mark.parametrize("text,fragment", [
    (LAUGHS, "shared.yaml:1: YAML anchors (&lol0)"),
    (BAD["escape in description"][0], "shared.yaml:2: description contains the control character"),
    (BAD["400 digits weight"][0], "shared.yaml:15: a number of 400 characters"),
    (BAD["deep flow"][0], "nested more than 32 levels"),
])
def test_grammar_check_reports_one_line(cli, tmp_path, text, fragment):
    (tmp_path / "shared.yaml").write_text(text)
    result = cli("grammar", "check", "shared.yaml")
    assert_user_error(result, fragment)
    assert "\x1b[2J" not in result.stdout + result.stderr


def test_grammar_check_says_why_a_derivation_is_invalid(cli, tmp_path):
    flipped = edit('      - {name: identity, expr: "x"}',
                   '      - {name: identity, expr: "x"}\n      - {name: flipped, expr: "-x"}')
    (tmp_path / "flipped.yaml").write_text(flipped)
    result = cli("grammar", "check", "flipped.yaml", "--depth", "3")
    assert result.returncode == 0, result.stderr
    said = " ".join(result.stdout.split())
    assert "2 valid" in said and "invalid: Mirror flipped is not increasing on [-20, -0.01]" in said


# --------------------------------------------------------------------------- fuzzing
MIRROR = (pathlib.Path(language.GRAMMAR_DIR) / "mirror.yaml").read_text(encoding="utf-8")
# Characters and tokens that YAML, expressions and derivations give a meaning to.
PIECES = list(" :-[]{}&*!|>'\"#,?%@`\n\t0123456789.eE+_()=xyz\x1b\x00\u202e\xe9") + [
    "*a", "&a ", "!!python/name:os.system ", ".inf", "1e999", BIG, "yes", "\n  ", "? ", "<<: ", "2024-13-01",
    "!!set ", "- "]
# Values a word of a grammar (a name, number or expression) can be replaced with.
WORDS = ["Loss", "Link", "Mirror", "z", "x", "r_w", "beta", "lambda", "jnp", "_x", "exp", "log", "softplus",
         "logistic", "identity", "0", "-1", "13", "1e-3", "1.0e308", "1e999", ".inf", ".nan", BIG, "yes", "null",
         "[]", "{}", "[x, x]", "{a: 1}", "*a", "&a x", "!!set", "'[/]'", '"\\e[2J"', '"a\\nb"', "2024-13-01",
         "main(Link=logistic)", "(", ")", "exp(exp(", "Link.a(z)", "Mirror(Mirror(x))", "z ^ z ^ z", ""]
WORD = re.compile(r"[A-Za-z0-9_.+-]+")


@st.composite
def mutated(draw, text: str) -> str:
    """``text`` with a few words replaced (mostly still YAML, so the checks behind the
    parser are reached) or a few characters spliced in (anything at all)."""
    if draw(st.booleans()):
        words = [m.span() for m in WORD.finditer(text)]
        for _ in range(draw(st.integers(1, 3))):
            start, end = draw(st.sampled_from(words))
            text = text[:start] + draw(st.sampled_from(WORDS)) + text[end:]
            words = [m.span() for m in WORD.finditer(text)] or [(0, 0)]
        return text
    start = draw(st.integers(0, len(text)))
    end = min(len(text), start + draw(st.integers(0, 8)))
    return text[:start] + "".join(draw(st.lists(st.sampled_from(PIECES), max_size=6))) + text[end:]


FUZZ = settings(max_examples=200, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def loads_or_grammar_error(text: str) -> None:
    try:
        g = grammar.loads(text)
    except GrammarError as e:
        assert "\n" not in str(e), str(e)
    else:
        assert isinstance(g, language.Grammar)


@FUZZ
@given(mutated(BASE))
def test_mutations_of_a_grammar_load_or_are_one_error(text):
    loads_or_grammar_error(text)


@settings(FUZZ, max_examples=20)
@given(mutated(MIRROR))
def test_mutations_of_mirror_load_or_are_one_error(text):
    loads_or_grammar_error(text)


@settings(FUZZ, max_examples=100)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                        st.sampled_from(sorted(language.TOP_LEVEL_KEYS) + ["Loss", "productions", "expr", "x"]),
                        inner, max_size=4), max_leaves=20))
def test_any_yaml_document_loads_or_is_one_error(value):
    loads_or_grammar_error(yaml.safe_dump(value))


@pytest.mark.parametrize("text", [
    "mpo(Link=logistic", "mpo(Link=logistic,", "mpo(" * 3000,
    "mpo(Link=" + "gated(Link.a=" * 100 + "logistic" + ")" * 101, 5, ["mpo"],
])
def test_untrusted_derivations_are_one_line_errors(text):
    """Derivations come from run folders and checkpoints too: bounded, never an IndexError or
    RecursionError."""
    from grammar import derivation, load

    with pytest.raises(GrammarError):
        derivation.parse_derivation(load("mirror.yaml"), text)


def test_a_function_nonterminal_that_squares_itself_is_checked_in_linear_time():
    """F(x) -> F(x*x*x*x + x) nests a shared parameter: the tree doubles per level while its
    distinct nodes grow by a few. Hashing, bounds and checks stay linear in the latter."""
    g = grammar.loads("""
name: squares
start: S
nonterminals:
  S:
    productions: ["F(logp_w - logp_l)"]
  F:
    params: [x]
    productions: ["x", "F(x*x*x*x + x)"]
limits: {max_depth: 12, max_size: 1024}
""")
    from grammar import derivation

    node = derivation.parse_derivation(g, "p0(F=p1(F=" * 0 + "p0(F=" + "p1(F=" * 10 + "p0" + ")" * 11)
    reason = derivation.check(g, node)
    assert reason is not None and "too large" in reason
