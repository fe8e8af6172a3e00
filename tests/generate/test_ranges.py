"""A1111 X/Y/Z range syntax, by example and by property; ranges stay lazy."""

from __future__ import annotations

import itertools
import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from t2iscope.generate.limits import MAX_AXIS_VALUES
from t2iscope.generate.ranges import Values, parse_values


@pytest.mark.parametrize(
    ("spec", "kind", "expected"),
    [
        ("1-5", int, [1, 2, 3, 4, 5]),
        ("1-5 (+2)", int, [1, 3, 5]),
        ("1-10 [5]", int, [1, 3, 5, 7, 10]),  # A1111: linspace(1, 10, 5) truncated to int
        ("10-1 (-3)", int, [10, 7, 4, 1]),
        ("1, 4-6, 9", int, [1, 4, 5, 6, 9]),
        ("3-9 (+1.5)", float, [3.0, 4.5, 6.0, 7.5, 9.0]),
        ("0.5-1.0 [3]", float, [0.5, 0.75, 1.0]),
        ([2, "5-6"], int, [2, 5, 6]),
        (7.5, float, [7.5]),
        ("Euler a, DPM++ 2M", str, ["Euler a", "DPM++ 2M"]),
        (["Euler a", "DDIM"], str, ["Euler a", "DDIM"]),
    ],
)
def test_a1111_examples(spec, kind, expected):
    assert list(parse_values(spec, kind)) == expected


@pytest.mark.parametrize(
    ("spec", "kind", "message"),
    [
        ("1-5 (+0)", int, "step must not be 0"),
        ("1-5 (-1)", int, "away from the end"),
        ("1-5 [0]", int, "count must be >= 1"),
        ("1.5-3", float, r"needs \(\+step\) or \[count\]"),
        ("2.5", int, "not an integer"),
        ("lots", int, "could not convert|lots"),
        ([], int, "no values"),
        ([None], int, "not a value"),
    ],
)
def test_bad_specs(spec, kind, message):
    with pytest.raises(ValueError, match=message):
        parse_values(spec, kind)


@given(st.integers(-50, 50), st.integers(-50, 50), st.integers(1, 9))
def test_step_range_properties(a, b, step):
    signed = step if b >= a else -step
    values = list(parse_values(f"{a}-{b} ({signed:+d})", int))
    assert values[0] == a
    assert all(y - x == signed for x, y in itertools.pairwise(values))
    assert min(a, b) <= min(values) and max(values) <= max(a, b)
    assert abs(b - values[-1]) < step  # stops within one step of the end, never past it


@given(st.integers(0, 100), st.integers(0, 100), st.integers(2, 12))
def test_count_range_properties(a, b, count):
    values = list(parse_values(f"{a}-{b} [{count}]", int))
    assert len(values) == count
    assert values[0] == a and values[-1] == b
    assert values == sorted(values) or values == sorted(values, reverse=True)


@pytest.mark.parametrize(
    ("spec", "kind", "message"),
    [
        ("nan", float, "expected a finite number, got 'nan'"),
        ("inf, 2", float, "expected a finite number, got 'inf'"),
        ("-inf", float, "expected a finite number, got '-inf'"),
        (float("inf"), float, "expected a finite number, got 'inf'"),
        ("four", int, "expected an integer, got 'four'"),
        ("x", float, "expected a number, got 'x'"),
    ],
)
def test_non_finite_and_non_numeric_values_are_refused(spec: object, kind: type, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_values(spec, kind)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("20.0", "expected an integer, got '20.0'"),
        ("1e5", "expected an integer, got '1e5'"),
        ("1_000", "expected an integer, got '1_000'"),
        ("1, 20.0", "expected an integer, got '20.0'"),
        ("1.0-5", "expected an integer, got '1.0'"),
        ("1-5 (+2.0)", "expected an integer, got '+2.0'"),
        ("1-10.0 [5]", "expected an integer, got '10.0'"),
        (20.0, "expected an integer, got 20.0"),
        ([1, 2.0], "expected an integer, got 2.0"),
        ("nan", "expected an integer, got 'nan'"),
    ],
)
def test_integer_axes_take_integer_spellings_only(spec: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_values(spec, int)
    assert str(info.value) == message


def test_integer_spellings_still_expand() -> None:
    assert list(parse_values(" -3 - +1 ", int)) == [-3, -2, -1, 0, 1]
    assert list(parse_values(["7", 8, "1-3 (+1)"], int)) == [7, 8, 1, 2, 3]
    assert list(parse_values("1e1", float)) == [10.0] and list(parse_values(2, float)) == [2.0]


@pytest.mark.parametrize(
    ("spec", "kind", "count", "last"),
    [
        ("0-100000000", int, 100_000_001, 100_000_000),  # issue 14: this built a 3.3 GB grid
        ("0-4294967295 (+3)", int, 1_431_655_766, 4_294_967_295),
        ("0-1000 (+0.000001)", float, 1_000_000_001, 1000.0),
        ("1-10 [1000000000]", float, 1_000_000_000, 10.0),
        ("5, 0-100000000, 7", int, 100_000_003, 7),
    ],
)
def test_ranges_are_counted_and_indexed_without_being_built(spec, kind, count, last):
    tracemalloc.start()
    try:
        values = parse_values(spec, kind)
        assert (len(values), values[-1]) == (count, last)
        assert list(itertools.islice(values, 3)) == [values[0], values[1], values[2]]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # bytes: a built list of 10**8 values takes gigabytes
    assert isinstance(values, Values)


def test_bounds_come_from_range_ends():
    assert parse_values("9, 100-0 (-7), 0-3000000000", int).bounds() == (0, 3_000_000_000)
    assert parse_values("0.5-1.0 [3], 0.25", float).bounds() == (0.25, 1.0)


@pytest.mark.parametrize(
    "spec",
    [
        f"0-{MAX_AXIS_VALUES}",  # one value more than 2**32
        "0-99999999999999999999999 (+1)",
        f"1-2 [{MAX_AXIS_VALUES + 1}]",
        "0-4000000000 (+0.5)",
        f"0-{'9' * 300} (+0.{'0' * 300}1)",  # the ratio of two finite floats overflows to inf
        ["0-4000000000", "0-4000000000"],  # each part fits, the axis does not
    ],
)
def test_more_values_than_an_axis_holds_are_refused(spec):
    with pytest.raises(ValueError, match=f"more than {MAX_AXIS_VALUES} values"):
        parse_values(spec, float if "." in str(spec) else int)


@given(
    st.one_of(st.integers(-(10**6), 10**6), st.floats(-1e4, 1e4).map(lambda f: round(f, 4))),
    st.one_of(st.integers(-(10**6), 10**6), st.floats(-1e4, 1e4).map(lambda f: round(f, 4))),
    st.integers(1, 40),
)
def test_count_ranges_equal_numpy_linspace(a, b, count):
    # A1111 uses np.linspace; the lazy range computes each value the way numpy does
    spec = f"{a}-{b} [{count}]"
    assert list(parse_values(spec, float)) == [round(float(v), 10) for v in np.linspace(a, b, num=count)]
    ia, ib = int(a), int(b)
    assert list(parse_values(f"{ia}-{ib} [{count}]", int)) == [int(v) for v in np.linspace(ia, ib, num=count)]
