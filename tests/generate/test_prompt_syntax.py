"""A1111 emphasis parser: A1111's documented examples, our two deviations, and property tests."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from t2iscope.generate.prompt_syntax import parse_prompt_attention


def _approx(runs: list[tuple[str, float]]) -> list[tuple[str, object]]:
    return [(t, pytest.approx(w, rel=1e-12)) for t, w in runs]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A1111's parse_prompt_attention docstring, verbatim.
        ("normal text", [("normal text", 1.0)]),
        ("an (important) word", [("an ", 1.0), ("important", 1.1), (" word", 1.0)]),
        ("(unbalanced", [("unbalanced", 1.1)]),
        ("\\(literal\\]", [("(literal]", 1.0)]),
        ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
        (
            "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
            [
                ("a ", 1.0),
                ("house", 1.5730000000000004),
                (" ", 1.1),
                ("on", 1.0),
                (" a ", 1.1),
                ("hill", 0.55),
                (", sun, ", 1.1),
                ("sky", 1.4641000000000006),
                (".", 1.1),
            ],
        ),
        # The rest of issue 5's list.
        ("((x))", [("x", 1.1 * 1.1)]),
        ("(x:1.3)", [("x", 1.3)]),
        ("[x]", [("x", 1 / 1.1)]),
        ("[[x]]", [("x", 1 / 1.1 / 1.1)]),
        ("\\\\ and \\)", [("\\ and )", 1.0)]),
        ("a) b] c", [("a) b] c", 1.0)]),
        ("x:1.5) y", [("x:1.5) y", 1.0)]),
        ("(a: b)", [("a: b", 1.1)]),
        ("", [("", 1.0)]),
    ],
)
def test_a1111_examples(text: str, expected: list[tuple[str, float]]) -> None:
    assert parse_prompt_attention(text) == _approx(expected)


def test_house_example_exact_floats() -> None:
    """Same float products as A1111 (1.3 * 1.1 * 1.1), not merely close ones."""
    runs = dict(parse_prompt_attention("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky)))."))
    assert runs["house"] == 1.3 * 1.1 * 1.1
    assert runs["sky"] == 1.1 * 1.1 * 1.1 * 1.1


def test_break_splits_and_eats_surrounding_whitespace() -> None:
    assert parse_prompt_attention("a cat  BREAK\n a dog") == [("a cat", 1.0), ("BREAK", -1.0), ("a dog", 1.0)]
    assert parse_prompt_attention("BREAKFAST") == [("BREAKFAST", 1.0)]
    assert parse_prompt_attention("break") == [("break", 1.0)]


def test_break_inside_brackets_is_rescaled_like_a1111() -> None:
    """As A1111: ("BREAK", -1.1) is no chunk break (the encoder then tokenizes the word "BREAK")."""
    assert parse_prompt_attention("(a BREAK b)") == [("a", 1.1), ("BREAK", -1.1), ("b", 1.1)]
    assert parse_prompt_attention("(a BREAK b:0)") == [("aBREAKb", 0.0)]  # -0.0 == 0.0: merged


def test_malformed_number_is_text_not_a_crash() -> None:
    assert parse_prompt_attention("(x:1.2.3) y") == _approx([("x:1.2.3", 1.1), (" y", 1.0)])
    assert parse_prompt_attention("(x:.)") == _approx([("x:.", 1.1)])


def test_lone_backslash_is_dropped_like_a1111() -> None:
    assert parse_prompt_attention("a\\b") == [("ab", 1.0)]


# --- property tests -------------------------------------------------------------------------------

PLAIN = st.text(alphabet=st.characters(blacklist_characters="\\()[]:"), max_size=40).filter(
    lambda s: "BREAK" not in s
)


@given(PLAIN.filter(bool))
def test_plain_text_is_one_run_of_weight_one(text: str) -> None:
    assert parse_prompt_attention(text) == [(text, 1.0)]


@settings(max_examples=300)
@given(st.text(max_size=60))
def test_never_raises_and_always_returns_runs(text: str) -> None:
    runs = parse_prompt_attention(text)
    assert runs
    assert all(isinstance(t, str) and isinstance(w, float) for t, w in runs)


# A tiny grammar with an independent reference: each node renders to (prompt text, [(char, weight)]).
WORD = st.text(alphabet="abc xyz,.!0123456789", min_size=1, max_size=6)
ESCAPE = st.sampled_from(["\\(", "\\)", "\\[", "\\]", "\\\\"])
WEIGHT = st.integers(-200, 300).map(lambda n: n / 100)


def _leaf(text: str) -> tuple[str, list[tuple[str, float]]]:
    literal = text[1:] if text.startswith("\\") else text
    return text, [(c, 1.0) for c in literal]


def _scaled(node: tuple[str, list[tuple[str, float]]], open_: str, close: str, factor: float):
    text, chars = node
    return open_ + text + close, [(c, w * factor) for c, w in chars]


def _extend(children: list[tuple[str, list[tuple[str, float]]]]) -> st.SearchStrategy:
    concat = st.lists(children, min_size=1, max_size=4).map(
        lambda nodes: ("".join(n[0] for n in nodes), [c for n in nodes for c in n[1]])
    )
    return st.one_of(
        concat,
        children.map(lambda n: _scaled(n, "(", ")", 1.1)),
        children.map(lambda n: _scaled(n, "[", "]", 1 / 1.1)),
        st.tuples(children, WEIGHT).map(lambda nw: _scaled(nw[0], "(", f":{nw[1]!r})", nw[1])),
    )


PROMPT = st.recursive(st.one_of(WORD, ESCAPE).map(_leaf), _extend, max_leaves=12)


def _per_char(runs: list[tuple[str, float]]) -> list[tuple[str, float]]:
    return [(c, w) for t, w in runs for c in t]


@settings(max_examples=300)
@given(PROMPT)
def test_balanced_prompts_match_the_reference_weights(node: tuple[str, list[tuple[str, float]]]) -> None:
    """Text minus syntax is reproduced, escapes survive, weights are the products of the brackets."""
    text, expected = node
    got = _per_char(parse_prompt_attention(text))
    assert "".join(c for c, _ in got) == "".join(c for c, _ in expected)
    for (_, w_got), (_, w_exp) in zip(got, expected, strict=True):
        assert math.isclose(w_got, w_exp, rel_tol=1e-9, abs_tol=1e-12)


@given(PROMPT, st.sampled_from(["(", "["]))
def test_an_unclosed_bracket_scales_everything_after_it(node, opener: str) -> None:
    text, expected = node
    factor = 1.1 if opener == "(" else 1 / 1.1
    got = _per_char(parse_prompt_attention("z" + opener + text))
    assert got[0] == ("z", 1.0)
    for (_, w_got), (_, w_exp) in zip(got[1:], expected, strict=True):
        assert math.isclose(w_got, w_exp * factor, rel_tol=1e-9, abs_tol=1e-12)
