"""Payload key paths and the pure set/delete transforms (`pydrant/segments/payload.py`)."""

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pydrant.errors import BadInput
from pydrant.segments.payload import (
    WILDCARD,
    delete_keys,
    format_path,
    get_values,
    parse_path,
    set_payload,
)

# --- parse_path ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, expected",
    [
        ("a", ("a",)),
        ("a.b.c", ("a", "b", "c")),
        ("country.cities[].population", ("country", "cities", WILDCARD, "population")),
        ("tags[0]", ("tags", 0)),
        ("m[12][]", ("m", 12, WILDCARD)),
        ('meta."dotted.key"', ("meta", "dotted.key")),
        ('"with space"[].x', ("with space", WILDCARD, "x")),
        ("snake_case-and-dash.ünïcode1", ("snake_case-and-dash", "ünïcode1")),
        ('a.""', ("a", "")),
    ],
)
def test_parse_path_accepts_qdrant_syntax(key, expected):
    assert parse_path(key) == expected


@pytest.mark.parametrize(
    "key",
    ["", "a..b", "a.", "a[", ".a", "a[x]", "a[-1]", "a b", "a]", 'a."open', 'a."b\\"c"', "a.[]", "[]", "a[]b"],
)
def test_parse_path_rejects_malformed_keys(key):
    with pytest.raises(BadInput) as info:
        parse_path(key)
    assert "Invalid json path" in info.value.message
    assert f"'{key}'" in info.value.message


def test_parse_path_rejects_non_strings():
    with pytest.raises(BadInput):
        parse_path(5)


def test_parse_path_error_names_the_position():
    with pytest.raises(BadInput) as info:
        parse_path("a..b")
    assert "position 2" in info.value.message


@pytest.mark.parametrize("key", ["a", "a.b[]", "x[3].y", '"a b".c', 'q."x.y"[0][]'])
def test_format_path_round_trips(key):
    assert parse_path(format_path(parse_path(key))) == parse_path(key)


# --- get_values ----------------------------------------------------------------------------

DOC = {
    "country": {
        "name": "Germany",
        "cities": [
            {"name": "Berlin", "population": 3.7, "sights": ["Gate", "Reichstag"]},
            {"name": "Munich", "population": 1.5, "sights": ["Marienplatz"]},
            {"name": "Nowhere"},
        ],
    },
    "tags": ["a", "b"],
    "n": None,
    "empty": [],
}


def test_get_values_plain_and_nested_keys():
    assert get_values(DOC, "country.name") == ["Germany"]
    assert get_values(DOC, "missing") == []
    assert get_values(DOC, "country.name.deeper") == []


def test_get_values_projects_through_arrays_with_brackets_only():
    assert get_values(DOC, "country.cities[].population") == [3.7, 1.5]
    # Qdrant does not descend into an array for a plain key step.
    assert get_values(DOC, "country.cities.population") == []


def test_get_values_flattens_leaf_arrays_one_level():
    assert get_values(DOC, "country.cities[].sights") == ["Gate", "Reichstag", "Marienplatz"]
    assert get_values(DOC, "country.cities[].sights", flatten=False) == [["Gate", "Reichstag"], ["Marienplatz"]]
    assert get_values({"x": [[1], 2]}, "x") == [[1], 2]


def test_get_values_index_steps():
    assert get_values(DOC, "country.cities[1].name") == ["Munich"]
    assert get_values(DOC, "tags[1]") == ["b"]
    assert get_values(DOC, "tags[7]") == []
    assert get_values(DOC, "country[0]") == []


def test_get_values_keeps_nulls_and_empty_arrays_raw():
    assert get_values(DOC, "n", flatten=False) == [None]
    assert get_values(DOC, "empty", flatten=False) == [[]]
    assert get_values(DOC, "empty") == []


def test_get_values_accepts_parsed_paths():
    assert get_values(DOC, ("country", "cities", WILDCARD, "name")) == ["Berlin", "Munich", "Nowhere"]


# --- set_payload ---------------------------------------------------------------------------


def test_set_without_key_merges_top_level_keys():
    assert set_payload({"a": 1, "b": 2}, {"b": 3, "c": {"d": 4}}) == {"a": 1, "b": 3, "c": {"d": 4}}


def test_set_replaces_whole_nested_values_at_top_level():
    assert set_payload({"a": {"x": 1, "y": 2}}, {"a": {"x": 9}}) == {"a": {"x": 9}}


def test_set_null_value_removes_the_key():
    assert set_payload({"a": 1, "b": 2}, {"a": None, "zz": None}) == {"b": 2}
    assert set_payload({"o": {"a": 1, "b": 2}}, {"a": None}, key="o") == {"o": {"b": 2}}


def test_set_with_key_merges_into_the_nested_object():
    payload = {"property1": {"nested": "foo", "keep": 1}, "property2": {"nested": "bar"}}
    result = set_payload(payload, {"nested": "qux"}, key="property1")
    assert result == {"property1": {"nested": "qux", "keep": 1}, "property2": {"nested": "bar"}}


def test_set_with_key_creates_missing_objects():
    assert set_payload({}, {"c": 1}, key="k1.k2") == {"k1": {"k2": {"c": 1}}}
    assert set_payload(None, {"c": 1}, key="k1") == {"k1": {"c": 1}}


def test_set_with_key_replaces_a_scalar_in_the_way():
    assert set_payload({"a": 10, "z": 0}, {"x": 1}, key="a.b") == {"a": {"b": {"x": 1}}, "z": 0}


def test_set_with_wildcard_sets_in_every_element():
    payload = {"items": [{"n": 1}, {"n": 2}, "scalar"]}
    assert set_payload(payload, {"seen": True}, key="items[]") == {
        "items": [{"n": 1, "seen": True}, {"n": 2, "seen": True}, {"seen": True}]
    }
    # A wildcard over a non-array leaves an empty array (Qdrant).
    assert set_payload({"items": 5}, {"x": 1}, key="items[].a") == {"items": []}
    assert set_payload({}, {"x": 1}, key="items[].a") == {"items": []}


def test_set_with_index_sets_existing_elements_only():
    payload = {"b": [{"c": 1}, {"c": 2}]}
    assert set_payload(payload, {"c": 5}, key="b[1]") == {"b": [{"c": 1}, {"c": 5}]}
    assert set_payload(payload, {"c": 5}, key="b[5]") == payload


def test_set_does_not_mutate_its_inputs():
    payload = {"a": {"b": [{"c": 1}]}, "d": [1, 2]}
    values = {"new": {"deep": [1, {"x": 2}]}, "d": None}
    before_p, before_v = copy.deepcopy(payload), copy.deepcopy(values)
    result = set_payload(payload, values, key="a.b[0]")
    result["a"]["b"][0]["new"]["deep"][1]["x"] = 99
    assert payload == before_p
    assert values == before_v


def test_set_rejects_a_non_object_payload():
    with pytest.raises(BadInput):
        set_payload({}, [1, 2])


def test_set_rejects_a_bad_key():
    with pytest.raises(BadInput):
        set_payload({}, {"a": 1}, key="a..b")


# --- delete_keys ---------------------------------------------------------------------------


def test_delete_top_level_and_missing_keys():
    assert delete_keys({"a": 1, "b": 2}, ["a", "zzz"]) == {"b": 2}


def test_delete_nested_key():
    assert delete_keys({"a": {"b": 1, "c": 2}, "d": 3}, ["a.b"]) == {"a": {"c": 2}, "d": 3}


def test_delete_key_in_every_array_element():
    payload = {"a": [{"b": 1, "c": 2}, {"b": 3}, 7]}
    assert delete_keys(payload, ["a[].b"]) == {"a": [{"c": 2}, {}, 7]}


def test_delete_trailing_wildcard_empties_the_array():
    assert delete_keys({"a": [1, 2, 3], "b": 1}, ["a[]"]) == {"a": [], "b": 1}


def test_delete_trailing_index_is_a_no_op():
    assert delete_keys({"a": [1, 2, 3]}, ["a[1]"]) == {"a": [1, 2, 3]}
    assert delete_keys({"a": [{"x": 1, "y": 2}]}, ["a[0].x"]) == {"a": [{"y": 2}]}


def test_delete_through_a_non_object_changes_nothing():
    assert delete_keys({"a": 5}, ["a.b", "a[]", "a[0].c"]) == {"a": 5}


def test_delete_several_keys():
    assert delete_keys({"a": 1, "b": {"c": 1, "d": 2}, "e": 3}, ["a", "b.c", "e"]) == {"b": {"d": 2}}


def test_delete_does_not_mutate_and_returns_a_new_dict():
    payload = {"a": {"b": [{"c": 1, "d": 2}]}, "e": 1}
    before = copy.deepcopy(payload)
    result = delete_keys(payload, ["a.b[].c", "e"])
    assert result == {"a": {"b": [{"d": 2}]}}
    assert payload == before
    untouched = delete_keys(payload, ["nope"])
    assert untouched == payload and untouched is not payload


def test_delete_rejects_bad_keys_before_changing_anything():
    with pytest.raises(BadInput):
        delete_keys({"a": 1}, ["a", "b..c"])


# --- properties ----------------------------------------------------------------------------

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from(["x", "y"]))
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3)
    ),
    max_leaves=12,
)
payloads = st.dictionaries(st.sampled_from(["a", "b", "c"]), json_value, max_size=3)
def _path_text(first, steps):
    out = first
    for step in steps:
        out += step if step.startswith("[") else "." + step
    return out


key_paths = st.builds(
    _path_text, st.sampled_from(["a", "b", "c"]), st.lists(st.sampled_from(["a", "b", "[]", "[0]"]), max_size=3)
)


@settings(max_examples=200, deadline=None)
@given(payloads, st.dictionaries(st.sampled_from(["a", "b", "z"]), json_value, max_size=3), st.none() | key_paths)
def test_set_never_mutates_and_sets_what_it_says(payload, values, key):
    before = copy.deepcopy(payload)
    result = set_payload(payload, values, key)
    assert payload == before
    if key is None:
        for name, value in values.items():
            if value is None:
                assert name not in result
            else:
                assert result[name] == value


@settings(max_examples=200, deadline=None)
@given(payloads, st.lists(key_paths, max_size=3))
def test_delete_never_mutates_and_removes_plain_keys(payload, keys):
    before = copy.deepcopy(payload)
    result = delete_keys(payload, keys)
    assert payload == before
    for key in keys:
        path = parse_path(key)
        if all(isinstance(step, str) for step in path):
            assert get_values(result, key, flatten=False) == []
