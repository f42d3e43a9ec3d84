"""Score-boosting formulas (`pydrant/collection/formula.py`): one section per expression kind."""

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pydrant.collection.formula import Formula, rust_float
from pydrant.errors import BadInput
from pydrant.segments.filters import compile_filter

EARTH_RADIUS_M = 6371008.8


def f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


def formula(expression, defaults=None) -> Formula:
    return Formula(expression, defaults or {}, compile_filter)


def score(expression, payload=None, scores=(), defaults=None, point_id=1, has_vector=None) -> float:
    return formula(expression, defaults).score(point_id, payload or {}, list(scores), has_vector)


def compile_error(expression, defaults=None) -> str:
    with pytest.raises(BadInput) as info:
        formula(expression, defaults)
    return info.value.message


def score_error(expression, payload=None, scores=(), defaults=None) -> str:
    compiled = formula(expression, defaults)
    with pytest.raises(BadInput) as info:
        compiled.score(1, payload or {}, list(scores))
    return info.value.message


# --- constants and the f32 result ------------------------------------------------------------


def test_constant_is_rounded_to_f32_like_qdrant_constants():
    assert score(0.1) == f32(0.1) != 0.1
    assert score(3) == 3.0


def test_result_is_rounded_to_f32():
    # 1/3 is computed in f64 and reported as the nearest f32
    assert score({"div": {"left": 1, "right": 3}}) == f32(1 / 3)


def test_result_beyond_f32_range_is_an_error():
    # the constants are f32 1e30 = 1.0000000150474662e30; their f64 product exceeds f32
    message = score_error({"mult": [1e30, 1e30]})
    assert message == (
        "The expression 1000000030094932700000000000000000000000000000000000000000000 as f32 = inf "
        "produced a non-finite number"
    )


def test_intermediate_values_are_f64():
    # 1e30 * 1e30 / 1e30 overflows f32 midway but not f64
    assert score({"div": {"left": {"mult": [1e30, 1e30]}, "right": 1e30}}) == pytest.approx(f32(1e30), rel=1e-6)


# --- prefetch scores -------------------------------------------------------------------------


def test_score_is_prefetch_zero():
    assert score("$score", scores=[0.75, 0.25]) == 0.75
    assert score("$score[0]", scores=[0.75, 0.25]) == 0.75
    assert score("$score[1]", scores=[0.75, 0.25]) == 0.25


def test_missing_prefetch_score_takes_default_then_zero():
    assert score("$score[1]", scores=[0.5, None]) == 0.0
    assert score("$score[1]", scores=[0.5, None], defaults={"$score[1]": 0.125}) == 0.125
    # a prefetch index past the prefetches is a missing score too, not an error
    assert score("$score[7]", scores=[0.5]) == 0.0


def test_default_of_score_by_either_name():
    assert score("$score", scores=[None], defaults={"$score": 2}) == 2.0
    assert score("$score", scores=[None], defaults={"$score[0]": 3}) == 3.0


def test_score_default_that_is_not_a_number_counts_as_none():
    assert score("$score", scores=[None], defaults={"$score": "high"}) == 0.0
    assert score("$score", scores=[None], defaults={"$score": True}) == 0.0


def test_prefetch_count_needed():
    assert formula(1.0).prefetch_count_needed == 0
    assert formula("price").prefetch_count_needed == 0
    assert formula("$score").prefetch_count_needed == 1
    assert formula({"sum": ["$score", {"mult": ["$score[3]", 2]}]}).prefetch_count_needed == 4


def test_numpy_float32_scores_are_computed_in_f64():
    np = pytest.importorskip("numpy")
    # in f32, 16777216 + 1 == 16777216; Qdrant adds in f64 and then rounds the result
    value = score({"sum": ["$score", 1, -16777216]}, scores=[np.float32(16777216.0)])
    assert value == 1.0


# --- payload variables -----------------------------------------------------------------------


def test_payload_number():
    assert score("price", {"price": 12.5}) == 12.5
    assert score("count", {"count": 7}) == 7.0


def test_nested_paths():
    payload = {"a": {"b": 4}, "list": [10, 20], "objs": [{"v": 5}], "deep": {"x": [{"y": 1.5}]}}
    assert score("a.b", payload) == 4.0
    assert score("list[1]", payload) == 20.0
    assert score("objs[0].v", payload) == 5.0
    assert score("objs[].v", payload) == 5.0
    assert score("deep.x[0].y", payload) == 1.5
    assert score('"a".b', payload) == 4.0


def test_array_of_one_number_is_that_number():
    assert score("price", {"price": [3.5]}) == 3.5
    assert score("price[]", {"price": [3.5]}) == 3.5


def test_several_values_are_not_a_number():
    message = score_error("price", {"price": [1, 2]})
    assert message == (
        "Expected number value for price in the payload and/or in the formula defaults. Error: Value is not a number"
    )
    assert "Value is not a number" in score_error("objs[].v", {"objs": [{"v": 1}, {"v": 2}]})


def test_wildcard_path_does_not_open_nested_arrays():
    # `a[]` gives the elements as they are: one element that is an array is not a number
    assert "Value is not a number" in score_error("a[]", {"a": [[5]]})
    # without `[]` a value that is an array is opened one level
    assert score("a[0]", {"a": [[5]]}) == 5.0


def test_values_that_are_not_numbers():
    for value in (None, True, "12", {"x": 1}):
        assert "Value is not a number" in score_error("v", {"v": value}), value


def test_missing_value_takes_default():
    assert score("boost", {}, defaults={"boost": 0.5}) == 0.5
    assert score("a.b", {"a": {}}, defaults={"a.b": 2}) == 2.0
    # the default is keyed by the parsed path: both spellings name the same variable
    assert score("a.b", {}, defaults={'a."b"': 3}) == 3.0
    # an empty array has no value
    assert score("tags", {"tags": []}, defaults={"tags": 9}) == 9.0


def test_default_does_not_replace_a_value_of_the_wrong_type():
    assert "Value is not a number" in score_error("boost", {"boost": "x"}, defaults={"boost": 1})


def test_missing_value_without_default_is_an_error():
    message = score_error({"sum": ["$score", "missing_boost"]}, scores=[1.0])
    assert message == (
        "Expected number value for missing_boost in the payload and/or in the formula defaults. "
        "Error: No value found in a payload nor defaults"
    )


def test_default_of_the_wrong_type_is_an_error():
    assert "Value is not a number" in score_error("boost", {}, defaults={"boost": "high"})


# --- conditions ------------------------------------------------------------------------------


def test_match_condition_is_one_or_zero():
    condition = {"key": "tag", "match": {"any": ["h1", "h2"]}}
    assert score(condition, {"tag": "h1"}) == 1.0
    assert score(condition, {"tag": "p"}) == 0.0


def test_range_condition():
    condition = {"key": "price", "range": {"gte": 10, "lt": 20}}
    assert score(condition, {"price": 15}) == 1.0
    assert score(condition, {"price": 20}) == 0.0
    assert score(condition, {}) == 0.0


def test_has_id_condition_uses_the_point_id():
    condition = {"has_id": [3, 5]}
    assert score(condition, point_id=5) == 1.0
    assert score(condition, point_id=4) == 0.0


def test_has_vector_condition_asks_the_caller():
    condition = {"has_vector": "image"}
    assert score(condition, has_vector=lambda name: name == "image") == 1.0
    assert score(condition, has_vector=lambda name: False) == 0.0
    assert score(condition) == 0.0  # no vector information: matches no point


def test_filter_as_condition():
    condition = {"must": [{"key": "a", "match": {"value": 1}}], "must_not": [{"key": "b", "match": {"value": 2}}]}
    assert score(condition, {"a": 1, "b": 3}) == 1.0
    assert score(condition, {"a": 1, "b": 2}) == 0.0
    assert score({}, {}) == 1.0  # an empty filter holds for every point


def test_documentation_example_boosts_by_tag():
    # Qdrant's documentation: score + 0.5 for headings + 0.25 for paragraphs
    expression = {
        "sum": [
            "$score",
            {"mult": [0.5, {"key": "tag", "match": {"any": ["h1", "h2", "h3", "h4"]}}]},
            {"mult": [0.25, {"key": "tag", "match": {"any": ["p", "li"]}}]},
        ]
    }
    assert score(expression, {"tag": "h2"}, scores=[0.5]) == 1.0
    assert score(expression, {"tag": "li"}, scores=[0.5]) == 0.75
    assert score(expression, {"tag": "code"}, scores=[0.5]) == 0.5


def test_bad_condition_is_bad_input():
    assert "invalid condition" in compile_error({"key": "a", "match": {"value": 1.5}})
    assert "invalid condition" in compile_error({"has_id": ["not-an-id"]})


# --- geo distance ----------------------------------------------------------------------------


def geo(to="loc", lon=0.0, lat=0.0):
    return {"geo_distance": {"origin": {"lon": lon, "lat": lat}, "to": to}}


def test_geo_distance_one_degree_of_meridian():
    # along a meridian the haversine distance is R * dlat in radians
    expected = EARTH_RADIUS_M * math.pi / 180
    assert score(geo(), {"loc": {"lon": 0, "lat": 1}}) == f32(expected)


def test_geo_distance_quarter_of_equator():
    expected = EARTH_RADIUS_M * math.pi / 2
    assert score(geo(), {"loc": {"lon": 90, "lat": 0}}) == f32(expected)


def test_geo_distance_hand_computed_haversine():
    # Berlin (13.405, 52.52) to Paris (2.3522, 48.8566), haversine by hand
    phi1, phi2 = math.radians(52.52), math.radians(48.8566)
    a = math.sin((phi2 - phi1) / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(2.3522 - 13.405) / 2) ** 2
    expected = 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))
    value = score(geo(lon=13.405, lat=52.52), {"loc": {"lon": 2.3522, "lat": 48.8566}})
    assert value == pytest.approx(expected, rel=1e-6)
    assert 877_000 < value < 879_000


def test_geo_distance_default_and_array_forms():
    assert score(geo(), {}, defaults={"loc": {"lon": 0, "lat": 1}}) == f32(EARTH_RADIUS_M * math.pi / 180)
    # one point in an array is that point
    assert score(geo(), {"loc": [{"lon": 0, "lat": 1}]}) == f32(EARTH_RADIUS_M * math.pi / 180)
    # [lon, lat] reads as a point (serde's sequence form of Qdrant's GeoPoint)
    assert score(geo(), {"loc": [0, 1]}) == f32(EARTH_RADIUS_M * math.pi / 180)


def test_geo_distance_bad_values():
    assert score_error(geo(), {}) == (
        "Expected geo point value for loc in the payload and/or in the formula defaults. "
        "Error: No value found in a payload nor defaults"
    )
    assert "missing field `lat`" in score_error(geo(), {"loc": {"lon": 1}})
    assert "expected struct GeoPointShadow" in score_error(geo(), {"loc": "Berlin"})
    assert "within [-90;90]" in score_error(geo(), {"loc": {"lon": 0, "lat": 91}})
    two_points = {"loc": [{"lon": 0, "lat": 1}, {"lon": 0, "lat": 2}]}
    assert "invalid type: map, expected f64" in score_error(geo(), two_points)


def test_geo_distance_bad_origin_or_key():
    assert "origin" in compile_error(geo(lat=100))
    assert "origin" in compile_error({"geo_distance": {"origin": {"lon": 0}, "to": "loc"}})
    assert "Invalid json path" in compile_error(geo(to="a..b"))
    assert "missing required field" in compile_error({"geo_distance": {"origin": {"lon": 0, "lat": 0}}})


# --- datetimes -------------------------------------------------------------------------------


def test_datetime_constant_is_seconds_since_epoch():
    assert score({"datetime": "2023-01-01T00:00:00Z"}) == 1672531200.0
    assert score({"datetime": "1970-01-02"}) == 86400.0
    assert score({"datetime": "1970-01-01T01:00:00+01:00"}) == 0.0


def test_datetime_key_reads_payload_datetime():
    expression = {"sum": [{"datetime_key": "updated"}, {"neg": {"datetime": "2023-01-01T00:00:00Z"}}]}
    assert score(expression, {"updated": "2023-01-02T00:00:00Z"}) == 86400.0
    assert score(expression, {"updated": "2023-01-01T00:00:01.5Z"}) == 1.5
    assert score(expression, {}, defaults={"updated": "2023-01-01T00:01:00Z"}) == 60.0


def test_datetime_key_bad_values():
    assert score_error({"datetime_key": "t"}, {"t": 5}) == (
        "Expected datetime value for t in the payload and/or in the formula defaults. Error: Value is not a string"
    )
    assert "input contains invalid characters" in score_error({"datetime_key": "t"}, {"t": "yesterday"})
    assert "No value found" in score_error({"datetime_key": "t"}, {})


def test_bad_datetime_constant_is_bad_input():
    assert "is not in a supported date/time format" in compile_error({"datetime": "next week"})
    assert "expected a datetime string" in compile_error({"datetime": 5})


# --- decays ----------------------------------------------------------------------------------


DECAYS = ("lin_decay", "exp_decay", "gauss_decay")


def decay(kind, x, **params):
    return {kind: {"x": x, **params}}


@pytest.mark.parametrize("kind", DECAYS)
@pytest.mark.parametrize("midpoint, scale, target", [(0.5, 1.0, 0.0), (0.25, 10.0, 5.0), (0.75, 86400.0, -3.0)])
def test_decay_is_midpoint_at_one_scale_from_target(kind, midpoint, scale, target):
    params = {"midpoint": midpoint, "scale": scale, "target": target}
    for x in (target + scale, target - scale):
        assert score(decay(kind, x, **params)) == pytest.approx(midpoint, rel=1e-6), x
    assert score(decay(kind, target, **params)) == 1.0


@pytest.mark.parametrize("kind", DECAYS)
def test_decay_defaults_are_target_0_scale_1_midpoint_half(kind):
    assert score(decay(kind, 1.0)) == pytest.approx(0.5, rel=1e-6)
    assert score(decay(kind, -1.0)) == pytest.approx(0.5, rel=1e-6)
    assert score(decay(kind, 0.0)) == 1.0


@pytest.mark.parametrize("distance", [0.5, 2.0, 3.7])
def test_decay_formulas(distance):
    midpoint, scale, target = 0.3, 2.0, 1.0
    params = {"midpoint": midpoint, "scale": scale, "target": target}
    m = f32(midpoint)
    x = target + distance
    assert score(decay("lin_decay", x, **params)) == pytest.approx(max(0.0, 1 - (1 - m) / scale * distance), abs=1e-6)
    assert score(decay("exp_decay", x, **params)) == pytest.approx(m ** (distance / scale), rel=1e-6)
    assert score(decay("gauss_decay", x, **params)) == pytest.approx(m ** ((distance / scale) ** 2), rel=1e-6)


def test_lin_decay_stops_at_zero():
    assert score(decay("lin_decay", 5.0)) == 0.0
    # midpoint 0 reaches zero at one scale
    assert score(decay("lin_decay", 1.0, midpoint=0.0)) == 0.0
    assert score(decay("lin_decay", 0.5, midpoint=0.0)) == 0.5


def test_decay_over_expressions():
    expression = decay("exp_decay", "price", target={"mult": ["$score", 10]}, scale=5.0)
    assert score(expression, {"price": 15}, scores=[1.0]) == pytest.approx(0.5, rel=1e-6)


def test_decay_parameter_validation():
    assert compile_error(decay("exp_decay", 1.0, midpoint=1.0)) == (
        "Validation failed: Decay midpoint should be in the range (0.0, 1.0), got 1."
    )
    assert "(0.0, 1.0)" in compile_error(decay("gauss_decay", 1.0, midpoint=0.0))
    assert compile_error(decay("lin_decay", 1.0, midpoint=1.5)) == (
        "Validation failed: Linear decay midpoint should be in the range [0.0, 1.0], got 1.5."
    )
    assert compile_error(decay("lin_decay", 1.0, scale=0.0)) == (
        "Validation failed: Decay scale should be non-zero positive, got 0."
    )
    assert "non-zero positive" in compile_error(decay("exp_decay", 1.0, scale=-2.0))
    assert "missing required field" in compile_error({"exp_decay": {"target": 1.0}})
    assert "unknown field" in compile_error({"exp_decay": {"x": 1.0, "origin": 2.0}})


# --- arithmetic ------------------------------------------------------------------------------


f32_values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, width=32)


@given(st.lists(f32_values, max_size=8))
def test_sum_matches_python_arithmetic(values):
    total = 0.0
    for v in values:
        total += v
    assert score({"sum": values}) == f32(total)


@given(st.lists(f32_values, max_size=5))
def test_mult_matches_python_arithmetic(values):
    product = 1.0
    for v in values:
        if v == 0.0:
            product = 0.0
            break
        product *= v
    assert score({"mult": values}) == f32(product)


@given(f32_values, f32_values)
def test_variables_combine_like_constants(a, b):
    by_variables = score({"sum": ["a", {"mult": ["b", "$score"]}]}, {"a": a, "b": b}, scores=[2.0])
    by_constants = score({"sum": [a, {"mult": [b, 2.0]}]})
    assert by_variables == by_constants


def test_empty_sum_and_mult():
    assert score({"sum": []}) == 0.0
    assert score({"mult": []}) == 1.0


def test_mult_stops_at_zero_like_qdrant():
    # the missing variable after a zero factor is never read
    assert score({"mult": [0, "missing"]}) == 0.0
    assert "No value found" in score_error({"mult": ["missing", 0]})


def test_neg_and_abs():
    assert score({"neg": 2.5}) == -2.5
    assert score({"abs": -2.5}) == 2.5
    assert score({"abs": {"neg": "x"}}, {"x": 4}) == 4.0


def test_div():
    assert score({"div": {"left": 7, "right": 2}}) == 3.5
    assert score({"div": {"left": "a", "right": "b"}}, {"a": 1, "b": 4}) == 0.25


def test_division_by_zero_without_default_is_an_error():
    assert score_error({"div": {"left": 1, "right": 0}}) == "The expression 1/0 = inf produced a non-finite number"
    assert "-1/0 = -inf" in score_error({"div": {"left": -1, "right": 0}})


def test_division_by_zero_with_default():
    assert score({"div": {"left": 1, "right": 0, "by_zero_default": 42}}) == 42.0
    assert score({"div": {"left": 1, "right": "d", "by_zero_default": -1}}, {"d": 0}) == -1.0
    # by_zero_default only replaces division by zero
    assert score({"div": {"left": 1, "right": 4, "by_zero_default": 42}}) == 0.25


def test_div_with_zero_numerator_skips_the_denominator():
    assert score({"div": {"left": 0, "right": 0}}) == 0.0
    assert score({"div": {"left": 0, "right": "missing"}}) == 0.0


def test_sqrt():
    assert score({"sqrt": 16}) == 4.0
    assert score_error({"sqrt": -1}) == "The expression √-1 = NaN produced a non-finite number"


def test_pow():
    assert score({"pow": {"base": 2, "exponent": 10}}) == 1024.0
    assert score({"pow": {"base": 9, "exponent": 0.5}}) == 3.0
    assert score({"pow": {"base": -2, "exponent": 3}}) == -8.0
    assert "0^-1 = inf" in score_error({"pow": {"base": 0, "exponent": -1}})
    assert "-8^0.3333333432674408 = NaN" in score_error({"pow": {"base": -8, "exponent": 1 / 3}})
    assert "= inf" in score_error({"pow": {"base": 10, "exponent": 400}})


def test_exp_ln_log10():
    assert score({"exp": 0}) == 1.0
    assert score({"ln": {"exp": 2}}) == pytest.approx(2.0, rel=1e-6)
    assert score({"log10": 1000}) == 3.0
    assert score_error({"exp": 1000}) == "The expression exp(1000) = inf produced a non-finite number"
    assert score_error({"ln": 0}) == "The expression ln(0) = -inf produced a non-finite number"
    assert score_error({"log10": -1}) == "The expression log10(-1) = NaN produced a non-finite number"


def test_nested_expression():
    # score * (1 + 0.1 * popularity) / sqrt(age + 1)
    expression = {
        "div": {
            "left": {"mult": ["$score", {"sum": [1, {"mult": [0.1, "popularity"]}]}]},
            "right": {"sqrt": {"sum": ["age", 1]}},
        }
    }
    expected = 0.5 * (1 + f32(0.1) * 20) / math.sqrt(3 + 1)
    assert score(expression, {"popularity": 20, "age": 3}, scores=[0.5]) == f32(expected)


# --- malformed expressions -------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression, fragment",
    [
        (True, "expected a number, a variable name or an expression object"),
        (None, "expected a number, a variable name or an expression object"),
        ([1, 2], "expected a number, a variable name or an expression object"),
        ("$score[x]", "Invalid reserved variable: $score[x]"),
        ("$score[]", "Invalid reserved variable: $score[]"),
        ("$score.a", "Invalid reserved variable: $score.a"),
        ("$score[1][2]", "Invalid reserved variable: $score[1][2]"),
        ("$scores", "Invalid reserved word: $scores"),
        ("$", "Invalid reserved variable: $"),
        ("", "Invalid payload variable: "),
        ("my key", "Invalid payload variable: my key"),
        ({"sum": [1], "mult": [2]}, "one operator"),
        ({"sum": [1], "extra": 2}, "unexpected field(s) ['extra'] next to 'sum'"),
        ({"sum": 1}, "expected a list of expressions"),
        ({"neg": None}, "expected a number, a variable name or an expression object"),
        ({"div": {"left": 1}}, "missing required field(s) ['right']"),
        ({"div": {"left": 1, "right": 2, "by_zero_default": "x"}}, "expected a number"),
        ({"pow": {"base": 1, "exp": 2}}, "unknown field(s) ['exp']"),
        ({"datetime_key": 5}, "expected a payload key"),
        ({"sum": [1, {"sqrt": {"frobnicate": 1}}]}, "invalid condition"),
    ],
)
def test_malformed_expressions_are_bad_input(expression, fragment):
    assert fragment in compile_error(expression)


def test_error_names_the_place():
    assert compile_error({"sum": [1, {"div": {"left": "$nope", "right": 1}}]}).startswith(
        "Bad formula at formula.sum[1].div.left:"
    )


def test_bad_defaults_are_bad_input():
    assert "Invalid reserved variable: $score[a]" in compile_error(1.0, {"$score[a]": 1})
    assert "Invalid payload variable: a..b" in compile_error(1.0, {"a..b": 1})
    with pytest.raises(BadInput):
        Formula(1.0, ["not", "a", "map"], compile_filter)


# --- helpers ---------------------------------------------------------------------------------


def test_rust_float_prints_like_rust_display():
    assert rust_float(1.0) == "1"
    assert rust_float(-0.0) == "-0"
    assert rust_float(0.5) == "0.5"
    assert rust_float(1e21) == "1000000000000000000000"
    assert rust_float(1e-7) == "0.0000001"
    assert rust_float(math.inf) == "inf"
    assert rust_float(-math.inf) == "-inf"
    assert rust_float(math.nan) == "NaN"
