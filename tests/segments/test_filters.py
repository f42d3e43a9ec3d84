"""The filter language (`pydrant/segments/filters.py`): one section per condition kind."""

import uuid

import pytest

from pydrant.errors import BadInput
from pydrant.segments.filter_datetime import parse_datetime
from pydrant.segments.filter_geo import haversine_m
from pydrant.segments.filters import compile_filter
from pydrant.segments.types import PointContext
from datetime import UTC


def ctx(payload=None, point_id=1, vectors=()):
    return PointContext(point_id, lambda: payload, lambda name: name in vectors)


def matches(filter_, payload=None, point_id=1, vectors=()):
    compiled = compile_filter(filter_)
    if compiled is None:
        return True
    return compiled.matches(ctx(payload, point_id, vectors))


def field(key, **condition):
    return {"key": key, **condition}


def match(key, value):
    return {"must": [field(key, match={"value": value})]}


def bad(filter_) -> str:
    with pytest.raises(BadInput) as info:
        compile_filter(filter_)
    return info.value.message


# --- clauses -------------------------------------------------------------------------------

CITIES = {
    1: {"city": "London", "color": "green"},
    2: {"city": "London", "color": "red"},
    3: {"city": "London", "color": "blue"},
    4: {"city": "Berlin", "color": "red"},
    5: {"city": "Moscow", "color": "green"},
    6: {"city": "Moscow", "color": "blue"},
}
LONDON = field("city", match={"value": "London"})
RED = field("color", match={"value": "red"})


def selected(filter_):
    compiled = compile_filter(filter_)
    if compiled is None:
        return sorted(CITIES)
    return sorted(i for i, p in CITIES.items() if compiled.matches(ctx(p, i)))


def test_must_is_and():
    assert selected({"must": [LONDON, RED]}) == [2]


def test_should_is_or():
    assert selected({"should": [LONDON, RED]}) == [1, 2, 3, 4]


def test_must_not_is_none_of():
    assert selected({"must_not": [LONDON, RED]}) == [5, 6]


def test_clauses_combine_with_and():
    assert selected({"must": [LONDON], "must_not": [RED]}) == [1, 3]


def test_filter_nested_as_a_condition():
    assert selected({"must_not": [{"must": [LONDON, RED]}]}) == [1, 3, 4, 5, 6]


def test_a_clause_may_be_a_single_condition():
    assert selected({"must": LONDON, "must_not": RED}) == [1, 3]


def test_no_conditions_compile_to_none():
    assert compile_filter(None) is None
    assert compile_filter({}) is None
    assert compile_filter({"must": [], "must_not": [], "should": None, "min_should": None}) is None
    assert compile_filter({"must": [{}]}) is None  # an empty filter as a condition is true


def test_empty_should_matches_nothing():
    # Qdrant: `should: []` is "at least one of nothing" (qdrant/qdrant#554, wontfix).
    assert selected({"should": []}) == []
    assert selected({"must": [{"should": []}]}) == []
    assert compile_filter({"must_not": [{"should": []}]}) is None  # not(nothing) = everything


def test_min_should_counts_matching_conditions():
    conditions = [LONDON, RED, field("color", match={"value": "green"})]
    assert selected({"min_should": {"conditions": conditions, "min_count": 2}}) == [1, 2]
    assert selected({"min_should": {"conditions": conditions, "min_count": 1}}) == [1, 2, 3, 4, 5]
    assert selected({"min_should": {"conditions": conditions, "min_count": 3}}) == []
    assert selected({"min_should": {"conditions": conditions, "min_count": 4}}) == []
    assert compile_filter({"min_should": {"conditions": conditions, "min_count": 0}}) is None
    assert selected({"min_should": {"conditions": [], "min_count": 1}}) == []


def test_min_should_with_other_clauses():
    conditions = [RED, field("color", match={"value": "blue"}), {"has_id": [2, 3, 4]}]
    assert selected({"must": [LONDON], "min_should": {"conditions": conditions, "min_count": 2}}) == [2, 3]


def test_compiled_filter_is_reusable_across_points():
    compiled = compile_filter({"must": [LONDON]})
    assert [compiled.matches(ctx(p)) for p in CITIES.values()] * 2 == [True, True, True, False, False, False] * 2


# --- match value ---------------------------------------------------------------------------


def test_match_string_int_bool():
    assert matches(match("s", "red"), {"s": "red"})
    assert not matches(match("s", "red"), {"s": "Red"})
    assert matches(match("n", 3), {"n": 3})
    assert matches(match("n", -7), {"n": -7})
    assert matches(match("b", True), {"b": True})
    assert matches(match("b", False), {"b": False})
    assert not matches(match("b", False), {"b": True})


def test_match_does_not_cross_json_types():
    assert not matches(match("n", 1), {"n": True})
    assert not matches(match("b", True), {"b": 1})
    assert not matches(match("n", 0), {"n": False})
    assert not matches(match("n", 1), {"n": 1.0})
    assert not matches(match("n", 1), {"n": "1"})
    assert not matches(match("s", "1"), {"s": 1})


def test_match_any_element_of_an_array():
    assert matches(match("tags", "b"), {"tags": ["a", "b"]})
    assert not matches(match("tags", "c"), {"tags": ["a", "b"]})
    # Only one level is flattened, as in Qdrant.
    assert not matches(match("tags", "b"), {"tags": [["b"]]})


def test_match_missing_or_null_field():
    assert not matches(match("s", "red"), {})
    assert not matches(match("s", "red"), {"s": None})
    assert not matches(match("s", "red"), None)


def test_match_nested_key_and_array_projection():
    doc = {"country": {"name": "Japan", "cities": [{"name": "Tokyo", "sights": ["Tower"]}, {"name": "Osaka"}]}}
    assert matches(match("country.name", "Japan"), doc)
    assert matches(match("country.cities[].name", "Osaka"), doc)
    assert matches(match("country.cities[].sights", "Tower"), doc)
    assert matches(match("country.cities[1].name", "Osaka"), doc)
    assert not matches(match("country.cities[0].name", "Osaka"), doc)
    # No implicit descent into arrays: Qdrant needs the [] step.
    assert not matches(match("country.cities.name", "Osaka"), doc)


def test_match_value_accepts_int64_only():
    assert "64-bit" in bad(match("n", 1 << 63))
    assert matches(match("n", (1 << 63) - 1), {"n": (1 << 63) - 1})


# --- match any / except --------------------------------------------------------------------


def any_of(key, values):
    return {"must": [field(key, match={"any": values})]}


def except_(key, values):
    return {"must": [field(key, match={"except": values})]}


def test_match_any_strings_and_integers():
    assert matches(any_of("c", ["black", "yellow"]), {"c": "black"})
    assert not matches(any_of("c", ["black", "yellow"]), {"c": "green"})
    assert matches(any_of("c", ["black", "yellow"]), {"c": ["green", "yellow"]})
    assert matches(any_of("n", [1, 2]), {"n": 2})
    assert not matches(any_of("n", [1, 2]), {"n": 2.0})
    assert not matches(any_of("n", [1, 2]), {"n": True})
    assert not matches(any_of("n", [1, 2]), {"n": "1"})
    assert not matches(any_of("c", []), {"c": "anything"})
    assert not matches(any_of("c", ["a"]), {})


def test_match_except_on_values():
    assert matches(except_("c", ["black", "yellow"]), {"c": "green"})
    assert not matches(except_("c", ["black", "yellow"]), {"c": "black"})
    assert matches(except_("c", ["black", "yellow"]), {"c": ["black", "green"]})
    assert not matches(except_("c", ["black", "yellow"]), {"c": ["black", "yellow"]})
    assert matches(except_("n", [1, 2]), {"n": 3})
    assert not matches(except_("n", [1, 2]), {"n": 1})


def test_match_except_missing_null_and_other_types():
    # Qdrant: a missing field or a null never satisfies `except`...
    assert not matches(except_("c", ["x"]), {})
    assert not matches(except_("c", ["x"]), {"c": None})
    assert not matches(except_("c", ["x"]), {"c": []})
    assert not matches(except_("c", ["x"]), {"c": [None]})
    # ...while a value of another JSON type always does.
    assert matches(except_("c", ["x"]), {"c": 5})
    assert matches(except_("c", ["x"]), {"c": True})
    assert matches(except_("c", ["x"]), {"c": {"k": "x"}})
    assert matches(except_("c", ["x"]), {"c": [["x"]]})
    assert matches(except_("n", [1]), {"n": 1.0})
    assert matches(except_("n", [1]), {"n": "1"})
    assert matches(except_("c", []), {"c": "x"})
    assert matches(except_("c", []), {"c": 0})


@pytest.mark.parametrize("values", [["a", 1], [1.5], [True], "abc", None, [None]])
def test_match_any_rejects_mixed_or_wrong_lists(values):
    message = bad(any_of("c", values)) if values is not None else bad(any_of("c", 1))
    assert "filter.must[0].match" in message


# --- full text -----------------------------------------------------------------------------


def test_text_is_a_substring_match_without_an_index():
    f = {"must": [field("d", match={"text": "good cheap"})]}
    assert matches(f, {"d": "very good cheap stuff"})
    assert not matches(f, {"d": "good and cheap"})
    assert not matches(f, {"d": 5})
    assert matches(f, {"d": ["nope", "xx good cheap"]})


def test_phrase_is_a_substring_match_without_an_index():
    f = {"must": [field("d", match={"phrase": "brown fox"})]}
    assert matches(f, {"d": "the quick brown fox"})
    assert not matches(f, {"d": "the fox brown"})


def test_text_any_needs_one_token():
    f = {"must": [field("d", match={"text_any": "good cheap"})]}
    assert matches(f, {"d": "cheap hardware"})
    assert matches(f, {"d": "good performance"})
    assert not matches(f, {"d": "expensive"})
    assert not matches({"must": [field("d", match={"text_any": "   "})]}, {"d": "anything"})


# --- range ---------------------------------------------------------------------------------


def rng(key, **bounds):
    return {"must": [field(key, range=bounds)]}


def test_range_bounds():
    assert matches(rng("p", gte=100, lte=450), {"p": 100})
    assert matches(rng("p", gte=100, lte=450), {"p": 450.0})
    assert not matches(rng("p", gt=100, lt=450), {"p": 100})
    assert not matches(rng("p", gt=100, lt=450), {"p": 450})
    assert matches(rng("p", gt=1.5), {"p": 2})
    assert matches(rng("p", lt=-1), {"p": -1.01})


def test_range_ignores_non_numbers():
    assert not matches(rng("p", gte=0), {"p": "5"})
    assert not matches(rng("p", gte=0), {"p": True})
    assert not matches(rng("p", gte=0), {"p": None})
    assert not matches(rng("p", gte=0), {"p": {"v": 1}})
    assert not matches(rng("p", gte=0), {})


def test_range_on_arrays_needs_one_element():
    assert matches(rng("p", gte=9), {"p": ["x", 3, 9.5]})
    assert not matches(rng("p", gte=9), {"p": [1, 2]})
    assert matches(rng("c[].pop", gte=9.0), {"c": [{"pop": 3.7}, {"pop": 9.3}]})


def test_range_without_bounds_matches_any_number():
    assert matches({"must": [field("p", range={})]}, {"p": -3})
    assert not matches({"must": [field("p", range={})]}, {"p": "x"})


# --- datetime range ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, iso_utc",
    [
        ("2023-02-08T10:49:00Z", "2023-02-08T10:49:00+00:00"),
        ("2023-02-08T11:49:00+01:00", "2023-02-08T10:49:00+00:00"),
        ("2023-02-08T11:49:00+0100", "2023-02-08T10:49:00+00:00"),
        ("2023-02-08T05:49:00-05", "2023-02-08T10:49:00+00:00"),
        ("2023-02-08T10:49:00", "2023-02-08T10:49:00+00:00"),
        ("2023-02-08T10:49", "2023-02-08T10:49:00+00:00"),
        ("2023-02-08 10:49:00z", "2023-02-08T10:49:00+00:00"),
        ("2023-02-08t10:49:00.5Z", "2023-02-08T10:49:00.500000+00:00"),
        ("2023-02-08T10:49:00.123456789Z", "2023-02-08T10:49:00.123456+00:00"),
        ("2023-02-08", "2023-02-08T00:00:00+00:00"),
    ],
)
def test_parse_datetime_formats(text, iso_utc):
    from datetime import datetime

    expected = datetime.fromisoformat(iso_utc)
    micros = parse_datetime(text)
    assert micros is not None
    assert datetime.fromtimestamp(micros / 1_000_000, tz=UTC) == expected


@pytest.mark.parametrize(
    "text",
    ["", "2023-02-30", "2023-13-01", "2023-2-8", "2023-02-08T25:00", "2023-02-08T10", "yesterday", "2023-02-08Z"],
)
def test_parse_datetime_rejects(text):
    assert parse_datetime(text) is None


def test_datetime_range_compares_in_utc():
    f = rng("d", gt="2023-02-08T10:49:00Z", lte="2024-01-31T10:14:31Z")
    assert not matches(f, {"d": "2023-02-08T11:49:00+01:00"})  # exactly the lower bound
    assert matches(f, {"d": "2023-02-08T11:49:01+01:00"})
    assert matches(f, {"d": "2024-01-31T10:14:31Z"})
    assert not matches(f, {"d": "2024-01-31T11:14:31.000001+01:00"})
    assert matches(f, {"d": "2023-06-01"})
    assert matches(f, {"d": ["not a date", 5, "2023-06-01T00:00"]})


def test_datetime_range_ignores_non_datetimes():
    f = rng("d", gte="2000-01-01")
    assert not matches(f, {"d": "soon"})
    assert not matches(f, {"d": 1700000000})
    assert not matches(f, {})


def test_datetime_bounds_with_offsets_and_date_only():
    f = rng("d", gte="2023-02-08", lt="2023-02-09T00:00:00+01:00")
    assert matches(f, {"d": "2023-02-08T00:00:00Z"})
    assert matches(f, {"d": "2023-02-08T22:59:59Z"})
    assert not matches(f, {"d": "2023-02-08T23:00:00Z"})
    assert not matches(f, {"d": "2023-02-07T23:59:59.999999Z"})


def test_range_rejects_mixed_or_bad_bounds():
    assert "filter.must[0].range" in bad(rng("d", gt=1, lt="2023-01-01"))
    assert "filter.must[0].range.gt" in bad(rng("d", gt="tomorrow"))
    assert "filter.must[0].range.lt" in bad(rng("d", lt=True))
    assert "filter.must[0].range" in bad(rng("d", between=3))


# --- geo -----------------------------------------------------------------------------------

BERLIN = {"lon": 13.403683, "lat": 52.520711}


def test_geo_radius():
    f = {"must": [field("loc", geo_radius={"center": BERLIN, "radius": 1000.0})]}
    assert matches(f, {"loc": {"lon": 13.41, "lat": 52.52}})
    assert not matches(f, {"loc": {"lon": 13.5, "lat": 52.52}})
    assert matches(f, {"loc": [{"lon": 0, "lat": 0}, {"lon": 13.4037, "lat": 52.5207}]})
    assert not matches(f, {"loc": {"lon": "13.4", "lat": 52.52}})
    assert not matches(f, {"loc": {"lat": 52.52}})
    assert not matches(f, {"loc": "Berlin"})


def test_geo_radius_is_a_great_circle_near_the_pole():
    # Two points on opposite meridians near the North Pole are ~22 km apart.
    assert 21_000 < haversine_m(0, 89.9, 180, 89.9) < 23_000
    f = {"must": [field("loc", geo_radius={"center": {"lon": 0, "lat": 89.9}, "radius": 25_000})]}
    assert matches(f, {"loc": {"lon": 180, "lat": 89.9}})
    assert matches(f, {"loc": {"lon": -90, "lat": 90}})
    assert not matches(f, {"loc": {"lon": 0, "lat": 89.5}})


def test_geo_radius_across_the_antimeridian():
    f = {"must": [field("loc", geo_radius={"center": {"lon": 179.99, "lat": 0}, "radius": 5_000})]}
    assert matches(f, {"loc": {"lon": -179.99, "lat": 0}})


def test_geo_bounding_box_is_strictly_inside():
    box = {"top_left": {"lon": 13.40, "lat": 52.52}, "bottom_right": {"lon": 13.45, "lat": 52.49}}
    f = {"must": [field("loc", geo_bounding_box=box)]}
    assert matches(f, {"loc": {"lon": 13.42, "lat": 52.50}})
    assert not matches(f, {"loc": {"lon": 13.46, "lat": 52.50}})
    assert not matches(f, {"loc": {"lon": 13.42, "lat": 52.53}})
    assert not matches(f, {"loc": {"lon": 13.40, "lat": 52.50}})


def test_geo_bounding_box_across_the_antimeridian():
    box = {"top_left": {"lon": 170, "lat": 10}, "bottom_right": {"lon": -170, "lat": -10}}
    f = {"must": [field("loc", geo_bounding_box=box)]}
    assert matches(f, {"loc": {"lon": 175, "lat": 0}})
    assert matches(f, {"loc": {"lon": -175, "lat": 0}})
    assert not matches(f, {"loc": {"lon": 0, "lat": 0}})


def ring(*points):
    return {"points": [{"lon": lon, "lat": lat} for lon, lat in points]}


POLYGON = {
    "exterior": ring((-70, -70), (60, -70), (60, 60), (-70, 60), (-70, -70)),
    "interiors": [ring((-65, -65), (0, -65), (0, 0), (-65, 0), (-65, -65))],
}


@pytest.mark.parametrize(
    "lon, lat, inside",
    [
        (30, 30, True),  # inside the exterior, outside the hole
        (-30, -30, False),  # inside the hole
        (0, -30, True),  # on the hole's boundary is on the polygon's boundary
        (60, 0, True),  # on the exterior boundary
        (-70, -70, True),  # a vertex
        (61, 0, False),
        (-100, 0, False),
    ],
)
def test_geo_polygon_with_a_hole(lon, lat, inside):
    f = {"must": [field("loc", geo_polygon=POLYGON)]}
    assert matches(f, {"loc": {"lon": lon, "lat": lat}}) is inside


def test_geo_polygon_concave():
    u_shape = {"exterior": ring((0, 0), (3, 0), (3, 3), (2, 3), (2, 1), (1, 1), (1, 3), (0, 3), (0, 0))}
    f = {"must": [field("loc", geo_polygon=u_shape)]}
    assert matches(f, {"loc": {"lon": 0.5, "lat": 2}})
    assert not matches(f, {"loc": {"lon": 1.5, "lat": 2}})
    assert matches(f, {"loc": {"lon": 1.5, "lat": 0.5}})


@pytest.mark.parametrize(
    "condition, where",
    [
        ({"geo_radius": {"center": {"lon": 181, "lat": 0}, "radius": 1}}, "geo_radius.center.lon"),
        ({"geo_radius": {"center": {"lon": 0, "lat": -90.5}, "radius": 1}}, "geo_radius.center.lat"),
        ({"geo_radius": {"center": {"lon": 0, "lat": 0}}}, "geo_radius"),
        ({"geo_radius": {"center": {"lon": 0, "lat": 0}, "radius": "far"}}, "geo_radius.radius"),
        ({"geo_bounding_box": {"top_left": {"lon": 0, "lat": 0}}}, "geo_bounding_box"),
        (
            {"geo_bounding_box": {"top_left": {"lon": 0}, "bottom_right": {"lon": 1, "lat": 1}}},
            "geo_bounding_box.top_left.lat",
        ),
        ({"geo_polygon": {"exterior": ring((0, 0), (1, 0), (0, 0))}}, "geo_polygon.exterior.points"),
        ({"geo_polygon": {"exterior": ring((0, 0), (1, 0), (1, 1), (0, 1))}}, "geo_polygon.exterior.points"),
        (
            {"geo_polygon": {"exterior": POLYGON["exterior"], "interiors": [ring((0, 0), (1, 1), (0, 0))]}},
            "geo_polygon.interiors[0].points",
        ),
    ],
)
def test_geo_errors_name_the_field(condition, where):
    assert f"filter.must[0].{where}" in bad({"must": [field("loc", **condition)]})


# --- values_count --------------------------------------------------------------------------


def count(key, **bounds):
    return {"must": [field(key, values_count=bounds)]}


def test_values_count_counts_array_elements():
    assert matches(count("c", gt=2), {"c": ["a", "b", "c"]})
    assert not matches(count("c", gt=2), {"c": ["a", "b"]})
    assert matches(count("c", gte=2, lte=2), {"c": ["a", "b"]})
    assert matches(count("c", lt=1), {"c": []})


def test_values_count_of_scalars_null_and_missing():
    assert matches(count("c", lte=1, gte=1), {"c": "one"})
    assert matches(count("c", lte=1, gte=1), {"c": {"a": 1, "b": 2}})
    assert matches(count("c", lt=1), {"c": None})
    # Qdrant 1.15: a missing field fails every values_count condition.
    assert not matches(count("c", lt=1), {})


def test_values_count_is_per_value_reached():
    doc = {"a": [{"b": [1, 2, 3]}, {"b": [1]}]}
    assert matches(count("a[].b", gte=3), doc)
    assert matches(count("a[].b", lte=1), doc)
    assert not matches(count("a[].b", gt=3), doc)


def test_values_count_rejects_negative_or_non_integer_bounds():
    assert "values_count.gt" in bad(count("c", gt=-1))
    assert "values_count.lt" in bad(count("c", lt=1.5))


# --- is_empty / is_null --------------------------------------------------------------------


def is_empty(key):
    return {"must": [{"is_empty": {"key": key}}]}


def is_null(key):
    return {"must": [{"is_null": {"key": key}}]}


@pytest.mark.parametrize(
    "payload, empty",
    [
        ({}, True),
        ({"r": None}, True),
        ({"r": []}, True),
        ({"r": [None]}, False),
        ({"r": {}}, False),
        ({"r": ""}, False),
        ({"r": 0}, False),
        ({"r": False}, False),
    ],
)
def test_is_empty(payload, empty):
    assert matches(is_empty("r"), payload) is empty


def test_is_empty_needs_every_value_reached_to_be_empty():
    assert matches(is_empty("a[].b"), {"a": [{"b": None}, {"b": []}, {"c": 1}]})
    assert not matches(is_empty("a[].b"), {"a": [{"b": None}, {"b": 1}]})
    assert matches(is_empty("a[].b"), {"a": []})


def test_must_not_is_empty_selects_non_empty():
    assert matches({"must_not": [{"is_empty": {"key": "r"}}]}, {"r": [1]})
    assert not matches({"must_not": [{"is_empty": {"key": "r"}}]}, {"r": []})


@pytest.mark.parametrize(
    "payload, null",
    [({}, False), ({"r": None}, True), ({"r": []}, False), ({"r": [None]}, False), ({"r": "x"}, False)],
)
def test_is_null(payload, null):
    assert matches(is_null("r"), payload) is null


def test_is_null_through_arrays():
    assert matches(is_null("a[].b"), {"a": [{"b": 1}, {"b": None}]})
    assert not matches(is_null("a[].b"), {"a": [{"b": 1}, {"c": None}]})
    assert matches(is_null("r[]"), {"r": [1, None]})


def test_field_condition_is_empty_and_is_null_forms():
    assert matches({"must": [field("r", is_empty=True)]}, {})
    assert matches({"must": [field("r", is_empty=True)]}, {"r": []})
    assert not matches({"must": [field("r", is_empty=True)]}, {"r": [1]})
    assert matches({"must": [field("r", is_empty=False)]}, {"r": [None]})
    assert not matches({"must": [field("r", is_empty=False)]}, {})
    # The FieldCondition form of is_null sees nulls inside an array...
    assert matches({"must": [field("r", is_null=True)]}, {"r": [1, None]})
    assert not matches({"must": [field("r", is_null=True)]}, {})
    # ...and `is_null: false` holds for a missing field (Qdrant's check_empty).
    assert matches({"must": [field("r", is_null=False)]}, {})
    assert not matches({"must": [field("r", is_null=False)]}, {"r": None})


def test_field_condition_is_empty_holds_if_any_value_is_empty():
    doc = {"a": [{"b": 1}, {"b": []}]}
    assert matches({"must": [field("a[].b", is_empty=True)]}, doc)
    assert not matches(is_empty("a[].b"), doc)


# --- has_id / has_vector -------------------------------------------------------------------

U1 = "550e8400-e29b-41d4-a716-446655440000"


def test_has_id_with_integers_and_uuids():
    f = {"must": [{"has_id": [1, 3, U1]}]}
    assert matches(f, {}, point_id=3)
    assert not matches(f, {}, point_id=2)
    assert matches(f, {}, point_id=U1)
    assert not matches(f, {}, point_id=str(uuid.uuid4()))


@pytest.mark.parametrize("spelling", [U1.upper(), U1.replace("-", ""), "{" + U1 + "}", "urn:uuid:" + U1])
def test_has_id_normalises_uuid_spellings(spelling):
    assert matches({"must": [{"has_id": [spelling]}]}, {}, point_id=U1)


def test_has_id_empty_list_matches_nothing():
    assert not matches({"must": [{"has_id": []}]}, {}, point_id=1)
    assert matches({"must_not": [{"has_id": []}]}, {}, point_id=1)


@pytest.mark.parametrize("bad_id", [-1, 1 << 64, "not-a-uuid", True, 1.5, None])
def test_has_id_rejects_bad_ids(bad_id):
    assert "filter.must[0].has_id[1]" in bad({"must": [{"has_id": [1, bad_id]}]})


def test_has_id_is_checked_before_the_payload_is_loaded():
    def explode():
        raise AssertionError("payload loaded")

    compiled = compile_filter({"must": [LONDON, {"has_id": [5]}]})
    assert not compiled.matches(PointContext(4, explode, lambda name: False))


def test_has_vector():
    assert matches({"must": [{"has_vector": ""}]}, {}, vectors=("",))
    assert not matches({"must": [{"has_vector": ""}]}, {}, vectors=("image",))
    assert matches({"must": [{"has_vector": "image"}]}, {}, vectors=("image", "text"))
    assert matches({"must_not": [{"has_vector": "text"}]}, {}, vectors=("image",))
    assert "has_vector" in bad({"must": [{"has_vector": 3}]})


# --- nested --------------------------------------------------------------------------------

REX = {"dinosaur": "t-rex", "diet": [{"food": "leaves", "likes": False}, {"food": "meat", "likes": True}]}
DIPLO = {"dinosaur": "diplodocus", "diet": [{"food": "leaves", "likes": True}, {"food": "meat", "likes": False}]}
MEAT_LIKED = [field("food", match={"value": "meat"}), field("likes", match={"value": True})]


def test_flat_conditions_mix_array_elements():
    f = {"must": [field("diet[].food", match={"value": "meat"}), field("diet[].likes", match={"value": True})]}
    assert matches(f, REX) and matches(f, DIPLO)


@pytest.mark.parametrize("key", ["diet", "diet[]"])
def test_nested_applies_the_filter_per_element(key):
    f = {"must": [{"nested": {"key": key, "filter": {"must": MEAT_LIKED}}}]}
    assert matches(f, REX)
    assert not matches(f, DIPLO)


def test_nested_must_not_and_should_per_element():
    f = {"must": [{"nested": {"key": "diet", "filter": {"must_not": [field("likes", match={"value": True})]}}}]}
    assert matches(f, REX)  # the leaves element is not liked
    assert not matches(f, {"diet": [{"likes": True}]})
    leaves = field("food", match={"value": "leaves"})
    f = {"must": [{"nested": {"key": "diet", "filter": {"should": MEAT_LIKED, "must": [leaves]}}}]}
    assert not matches(f, REX)
    assert matches(f, DIPLO)


def test_nested_inside_nested():
    doc = {"a": [{"b": [{"x": 1, "y": 2}, {"x": 3, "y": 4}]}, {"b": [{"x": 1, "y": 4}]}]}
    both = [field("x", match={"value": 1}), field("y", match={"value": 4})]
    inner = {"nested": {"key": "b", "filter": {"must": both}}}
    f = {"must": [{"nested": {"key": "a", "filter": {"must": [inner]}}}]}
    assert matches(f, doc)
    doc["a"].pop()
    assert not matches(f, doc)


def test_nested_key_not_an_array_of_objects():
    f = {"must": [{"nested": {"key": "diet", "filter": {"must": MEAT_LIKED}}}]}
    assert not matches(f, {"diet": {"food": "meat", "likes": True}})  # an object, not an array
    assert not matches(f, {"diet": ["meat"]})
    assert not matches(f, {})
    g = {"must": [{"nested": {"key": "diet", "filter": {"must": [{"is_empty": {"key": "food"}}]}}}]}
    assert matches(g, {"diet": ["meat"]})  # a scalar element is an element with no fields


def test_nested_with_a_deeper_key():
    doc = {"zoo": {"animals": [{"kind": "cat", "age": 3}, {"kind": "dog", "age": 9}]}}
    old_dog = [field("kind", match={"value": "dog"}), field("age", range={"gt": 5})]
    f = {"must": [{"nested": {"key": "zoo.animals", "filter": {"must": old_dog}}}]}
    assert matches(f, doc)


def test_has_id_and_has_vector_inside_nested_match_no_element():
    f = {"must": [{"nested": {"key": "diet", "filter": {"must": [{"has_id": [1]}]}}}]}
    assert not matches(f, REX, point_id=1)
    f = {"must": [{"nested": {"key": "diet", "filter": {"must_not": [{"has_vector": ""}]}}}]}
    assert matches(f, REX, vectors=("",))


def test_nested_errors():
    assert "filter.must[0].nested" in bad({"must": [{"nested": {"key": "diet"}}]})
    assert "filter.must[0].nested.key" in bad({"must": [{"nested": {"key": "a..b", "filter": {}}}]})
    empty_condition = {"must": [{"nested": {"key": "d", "filter": {"must": [{"key": "x"}]}}}]}
    assert "filter.must[0].nested.filter.must[0]" in bad(empty_condition)


# --- several conditions in one FieldCondition ----------------------------------------------


def test_field_condition_with_two_conditions_is_an_or():
    f = {"must": [field("p", match={"value": 5}, range={"gt": 100})]}
    assert matches(f, {"p": 5})
    assert matches(f, {"p": 200})
    assert not matches(f, {"p": 50})


def test_values_count_takes_precedence_in_a_field_condition():
    f = {"must": [field("p", match={"value": 5}, values_count={"gt": 1})]}
    assert not matches(f, {"p": 5})
    assert matches(f, {"p": [1, 2]})


# --- malformed filters ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "filter_, fragment",
    [
        ([LONDON], "a filter must be a JSON object"),
        ({"must": [LONDON], "limit": 3}, "unknown filter field(s) ['limit']"),
        ({"must": "city"}, "filter.must"),
        ({"must": ["city"]}, "filter.must[0]: a condition must be a JSON object"),
        ({"should": [{"colour": "red"}]}, "filter.should[0]: unknown condition"),
        ({"must": [{"key": "a"}]}, "has nothing to check"),
        ({"must": [{"key": "a", "match": {"value": 1}, "exact": True}]}, "unknown field(s) ['exact']"),
        ({"must": [{"key": 5, "match": {"value": 1}}]}, "filter.must[0].key"),
        ({"must": [{"key": "a", "match": {}}]}, "exactly one of"),
        ({"must": [{"key": "a", "match": {"value": 1, "any": [1]}}]}, "exactly one of"),
        ({"must": [{"key": "a", "match": {"equals": 1}}]}, "unknown match field(s) ['equals']"),
        ({"must": [{"key": "a", "match": {"value": 1.5}}]}, "filter.must[0].match.value"),
        ({"must": [{"key": "a", "match": {"value": None}}]}, "exactly one of"),
        ({"must": [{"key": "a", "match": {"text": 3}}]}, "filter.must[0].match.text"),
        ({"must": [{"key": "a", "match": "red"}]}, "filter.must[0].match"),
        ({"must": [{"key": "a", "range": {"gt": "x"}}]}, "filter.must[0].range.gt"),
        ({"must": [{"key": "a", "is_empty": "yes"}]}, "filter.must[0].is_empty"),
        ({"must": [{"is_empty": {"key": "a", "x": 1}}]}, "filter.must[0].is_empty"),
        ({"must": [{"is_null": "a"}]}, "filter.must[0].is_null"),
        ({"must": [{"has_id": 1}]}, "filter.must[0].has_id"),
        ({"must": [{"has_id": [1], "key": "a"}]}, "unknown field(s) ['has_id']"),
        ({"must": [{"has_id": [1], "is_null": {"key": "a"}}]}, "unexpected field(s)"),
        ({"min_should": {"conditions": [LONDON], "min_count": -1}}, "filter.min_should.min_count"),
        ({"min_should": {"conditions": [LONDON]}}, "filter.min_should.min_count"),
        ({"min_should": {"conditions": LONDON, "min_count": 1}}, "filter.min_should.conditions"),
        ({"min_should": [LONDON]}, "filter.min_should"),
        (
            {"must": [{"must": [{"should": [{"key": "a..b", "match": {"value": 1}}]}]}]},
            "filter.must[0].must[0].should[0].key",
        ),
    ],
)
def test_malformed_filters_are_bad_input(filter_, fragment):
    assert fragment in bad(filter_)
