"""A loss's parts come back as the productions that derive it."""

from __future__ import annotations

import pytest

from grammar import derivation, parts, zoo


@pytest.mark.parametrize("name", [n for n in zoo.ZOO])
def test_parts_of_every_zoo_loss_are_its_productions(mirror, name):
    node = derivation.parse_derivation(mirror, mirror.seeds[name])
    ps = parts.parts(mirror, node)
    assert ps[0].role == "template" and ps[0].production == node.label
    labels = [(p.role, p.production) for p in ps[1:]]

    def expected(n):
        out = []
        for ref, child in n.children:
            out.append((ref, child.label))
            out += expected(child)
        return out

    assert labels == expected(node)
    assert all(" = " in p.formula for p in ps)


def test_every_zoo_loss_has_a_derivation(mirror):
    assert set(zoo.ZOO) <= set(mirror.seeds)


def test_dpo_reads_as_the_template(mirror):
    node = derivation.parse_derivation(mirror, mirror.seeds["dpo"])
    text = "\n".join(parts.lines(mirror, node, {"beta": 0.1}))
    assert "Link" in text and "logistic" in text and "g(z) = softplus(-z)" in text
    assert "m(x) = x" in text and "neg_entropy" in text
    assert "constants" in text and "beta = 0.1" in text
