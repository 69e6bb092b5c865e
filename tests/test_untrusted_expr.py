"""Untrusted expression text: parsing, substitution and the symbolic view stay bounded.

Expressions come from the command line (``discover expr``) and from run folders (every
row's ``expression`` is parsed when shown or exported). Each probe is a one-line error or
a bounded answer, never a hang, a RecursionError or a traceback; and every expression
within the budgets keeps the canonical hash it was stored with.
"""

from __future__ import annotations

import json
import pathlib

import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from discover.records import expression_of
from grammar import symbolic, zoo
from grammar.errors import GrammarError
from grammar.expr import MAX_DEPTH, MAX_NODES, Expr, Scope, bounds_problem, parse, to_text
from test_cli import assert_user_error, in_process

RESULTS = pathlib.Path(__file__).resolve().parent.parent / "results"
SCOPE = zoo.alias_scope(("beta",))
SUM6 = "logp_w+logp_l+ref_w+ref_l+len_w+t"
HANG = f"(((({SUM6})^2)^2)^2)^2"  # 52 characters, 20,349 terms expanded


def squared(text: str, times: int) -> str:
    for _ in range(times):
        text = f"({text})^2"
    return text


@pytest.fixture
def cli(tmp_path):
    return lambda *args: in_process(*args, cwd=tmp_path)


# --------------------------------------------------------------------------- parser and tree bounds
@pytest.mark.parametrize("text", [
    "(" * 200 + "logp_w" + ")" * 200,
    "-" * 500 + "logp_w",
    "+" * 500 + "logp_w",
    "exp(" * 100 + "logp_w" + ")" * 100,
    "+".join(["logp_w"] * 500),
    "*".join(["logp_w"] * 500),
])
def test_deep_text_is_one_error(text):
    with pytest.raises(GrammarError, match="nested too deeply"):
        parse(text)


def test_depth_and_size_just_within_bounds_parse():
    e = parse("(" * (MAX_DEPTH - 1) + "logp_w" + ")" * (MAX_DEPTH - 1))
    assert e == Expr.var("logp_w")
    e = parse("+".join(["logp_w"] * MAX_DEPTH))
    assert e.depth == MAX_DEPTH
    # wide but shallow: a sum of 16 products of 16 sums of 16 terms
    s16 = "(" + "+".join(["logp_w"] * 16) + ")"
    wide = parse("+".join(["(" + "*".join([s16] * 16) + ")"] * 16))
    assert (wide.depth, wide.size) == (46, 8191)


def test_definitions_that_double_are_refused_at_their_size():
    aliases = {"d0": parse("logp_w + ref_w")}
    with pytest.raises(GrammarError, match="too large"):
        for i in range(1, 20):
            aliases[f"d{i}"] = parse(f"d{i - 1} * d{i - 1}", Scope(aliases=dict(aliases)))
    assert max(a.size for a in aliases.values()) <= MAX_NODES


def test_substitution_that_doubles_is_measured_without_walking_the_tree():
    body = Expr.call("add", Expr("param", name="x"), Expr("param", name="x"))
    e = Expr.var("logp_w")
    for _ in range(40):
        e = body.substitute({("param", "x"): e})
    assert e.size == 2**41 - 1 and e.depth == 41
    assert "too large" in bounds_problem(e)
    assert bounds_problem(body) is None


def test_long_text_errors_are_cut():
    with pytest.raises(GrammarError) as err:
        parse("logp_w + " * 2000 + "?")
    assert len(str(err.value)) < 300


TOKENS = ["logp_w", "ref_l", "len_w", "t", "beta", "r_w", "m_l", "1", "2", "0.5", "-3", "1e308", "1e999",
          "+", "-", "*", "/", "^", "^2", "**", "(", ")", ",", "exp", "log_sigmoid(", "softplus(", "max(", "nope",
          "?", " ", "$", "[/]", "\x1b", "\u202e"]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(TOKENS), max_size=40))
def test_parser_fuzz_answers_an_expression_or_one_grammar_error(tokens):
    text = "".join(tokens)
    try:
        e = parse(text, SCOPE)
    except GrammarError as err:
        assert "\n" not in str(err)
        return
    assert parse(to_text(e), SCOPE) is not None


# --------------------------------------------------------------------------- symbolic budgets
def test_expansion_over_the_budget_is_left_unexpanded_and_deterministic():
    e = parse(HANG, SCOPE)
    assert not symbolic.expanded(e)
    assert symbolic.canonical(e) == (symbolic.symbol("logp_w", "var") + symbolic.symbol("logp_l", "var")
                                     + symbolic.symbol("ref_w", "var") + symbolic.symbol("ref_l", "var")
                                     + symbolic.symbol("len_w", "var") + symbolic.symbol("t", "var")) ** 16
    symbolic.canonical.cache_clear()
    assert symbolic.canonical_hash(e) == symbolic.canonical_hash(parse(HANG, SCOPE)) == "12cf6356014a76d0"
    assert symbolic.text(e) == "(len_w + logp_l + logp_w + ref_l + ref_w + t)**16"
    assert symbolic.complexity(e) == 9
    assert symbolic.compact(e) == ["loss = (len_w + logp_l + logp_w + ref_l + ref_w + t)**16"]
    assert "16" in symbolic.pretty(e) and "^{16}" in symbolic.latex(e)


@pytest.mark.parametrize("text", [
    # a function of a large sum, in every term of another: the argument is copied per term
    f"softplus({squared(SUM6, 3)}) * {squared(SUM6, 3)}",
    squared("logp_w + logp_l", 12),  # 4,097 terms, each of a few nodes: too many products
    squared(f"{SUM6} + len_l + beta", 3),  # 6,435 terms
])
def test_other_blowups_are_left_unexpanded(text):
    e = parse(text, SCOPE)
    assert not symbolic.expanded(e)
    assert symbolic.complexity(e) < 200


def test_within_the_budget_expands_as_before():
    e = parse(squared(SUM6, 2), SCOPE)  # 126 terms
    assert symbolic.expanded(e)
    assert len(symbolic.canonical(e).args) == 126


@pytest.mark.parametrize("text", [
    squared("2 * logp_w", 40),  # sympy would compute 2^(2^40)
    squared("logp_w + logp_w", 40),  # the same, without a literal
    " * ".join(["1e300"] * 20),
    squared("5e-324", 5),
])
def test_numbers_that_grow_huge_are_one_error(text):
    with pytest.raises(GrammarError, match="numbers of this expression grow"):
        symbolic.canonical_hash(parse(text, SCOPE))


def test_estimate_stays_close_to_the_expansion():
    # the estimate leaves coefficients out, so it may run a little under the true size
    for e in (parse(squared(SUM6, 2), SCOPE), parse(f"softplus({squared(SUM6, 1)}) * ({SUM6})", SCOPE),
              zoo.ZOO["discopop"].expr):
        s = symbolic._rewrite_canonical(symbolic.to_sympy(e))
        actual = sum(1 for _ in sympy.preorder_traversal(symbolic.canonical(e)))
        assert 0.7 * actual <= symbolic.expanded_size(s) <= 1.5 * actual


# Canonical hashes of the zoo as computed before the budgets existed.
ZOO_HASHES = {
    "dpo": "281a0f00ec92e029", "ipo": "4b25e5fa289905ec", "ipo_norm": "14dbfd1e51f9c7da", "hinge": "0d8a6a7c4591e3e3",
    "cdpo": "55a7ddfe24f40507", "rdpo": "74f7efb6ab2f5f09", "exo": "abf083d840ef546c", "nca": "18205aafd1a4a059",
    "bco": "969ceb36023c15ae", "sppo": "858a6f75b2d98328", "apo_zero": "957ff6e054e5fe53",
    "apo_down": "92d514a1774557f2", "discopop": "bcd8d5f4fb22cf2a", "simpo": "7b28306c6055320f",
    "orpo": "6ee4641bedb91dc6", "sft_to_dpo": "e6df3810b71a347a", "dpo_tsallis": "fc69d04d5ed0ec61",
    "dpo_log_odds": "89db0b1f40989953", "dpo_scheduled": "cd47feb691693abd", "sft_decay": "f67efb6b4fade9ea",
    "sft": "558e7774fe0cba00",
}


def test_zoo_hashes_are_unchanged():
    for name, h in ZOO_HASHES.items():
        if name in zoo.ZOO:
            assert symbolic.canonical_hash(zoo.ZOO[name].expr) == h, name


def _stored_rows(run: str):
    hof = json.loads((RESULTS / run / "hall_of_fame.json").read_text())
    final = json.loads((RESULTS / run / "final.json").read_text())
    for r in hof["ranked"]:
        yield r["hash"], r
    for r in final["rows"]:
        if r["kind"] == "discovered":
            yield r["key"].split("|")[0], r


@pytest.mark.parametrize("run", ["v2-hopper-noisy02-p64", "v2-hopper-noisy04-p64", "v2-lm-mixed"])
def test_committed_hashes_are_unchanged(run):
    for h, row in _stored_rows(run):
        assert symbolic.canonical_hash(expression_of(row)) == h, row["expression"]


@pytest.mark.slow  # 2 s: the expansion itself
def test_the_largest_committed_expansion_is_within_the_budget():
    # the committed loss of the largest expansion (about 117,000 nodes by the estimate)
    path = RESULTS / "v2-hopper-noisy04-p64" / "candidates.jsonl"
    row = next(r for r in map(json.loads, path.read_text().splitlines())
               if r["expression"].startswith("(1 - sigmoid(beta * (len_w * ((1 - w) * (logp_w / len_w) + w * ((1 - w) "
                                             "* ((1 - w) * (logp_w / len_w - log1mexp"))
    e = expression_of(row)
    assert symbolic.expanded(e)
    assert symbolic.canonical_hash(e) == row["hash"]


# --------------------------------------------------------------------------- the CLI
def test_expr_of_an_expansion_over_the_budget_answers(cli):
    out = cli("expr", "--", HANG)
    assert out.returncode == 0, out.stderr
    assert "(not expanded: over the size budget)" in out.stdout
    assert "12cf6356014a76d0" in out.stdout


@pytest.mark.parametrize("text, fragment", [
    ("(" * 200 + "logp_w" + ")" * 200, "nested too deeply"),
    ("+".join(["logp_w"] * 500), "nested too deeply"),
    (squared("2 * logp_w", 40), "numbers of this expression grow"),
    ("logp_w\x1b[2J", "unexpected character '\\x1b'"),
    ("logp_w / 0", "is infinite or undefined"),  # sympy's complex infinity (zoo), not a loss
    ("log(-1 + 0*t)", "is not real"),
])
def test_expr_probes_are_one_line(cli, text, fragment):
    out = cli("expr", "--", text)
    assert_user_error(out, fragment)
    assert "\x1b" not in out.stderr


def test_grammar_check_prints_file_text_as_written(cli, tmp_path):
    text = (pathlib.Path(__file__).resolve().parent.parent / "grammar" / "mirror.yaml").read_text()
    marked = text.replace("description: >\n  MPO template", "description: >\n  a [bold]grammar[/] [/] MPO template", 1)
    assert marked != text
    (tmp_path / "marked.yaml").write_text(marked)
    out = cli("grammar", "check", "marked.yaml", "--depth", "1", "--limit", "5")
    assert out.returncode == 0, out.stderr
    assert "a [bold]grammar[/] [/] MPO template" in out.stdout
