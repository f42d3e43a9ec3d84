import pytest
from qdrant_client.http import models

from pydrant.errors import BadInput, ValidationFailed
from pydrant.http.validation import deserialize, parse_json, to_plain


def test_malformed_json_is_bad_input():
    with pytest.raises(BadInput, match="Format error in JSON body"):
        parse_json(b'{"a": ')


def test_empty_body_is_none():
    assert parse_json(b"") is None and parse_json(b"  ") is None


def test_type_error_names_field():
    with pytest.raises(BadInput, match="size"):
        deserialize(models.VectorParams, {"size": "x", "distance": "Dot"})


def test_bound_error_is_422_with_path():
    with pytest.raises(ValidationFailed, match=r"vectors\.size: value 0 invalid"):
        deserialize(models.CreateCollection, {"vectors": {"size": 0, "distance": "Dot"}})


def test_bounds_checked_inside_named_vectors():
    with pytest.raises(ValidationFailed, match=r"vectors\.a\.size"):
        deserialize(models.CreateCollection, {"vectors": {"a": {"size": 0, "distance": "Dot"}}})


def test_to_plain_uses_aliases_and_drops_nulls():
    match = deserialize(models.MatchExcept, {"except": [1, 2]})
    assert to_plain(match) == {"except": [1, 2]}
    params = deserialize(models.VectorParams, {"size": 3, "distance": "Dot"})
    assert to_plain(params) == {"size": 3, "distance": "Dot"}



def test_check_depth_allows_127_levels_and_refuses_128():
    import numpy as np

    from pydrant.http.validation import MAX_JSON_DEPTH, check_depth

    def nested(depth, leaf=1):
        for i in range(depth):
            leaf = {"a": leaf} if i % 2 else [0.5, leaf]
        return leaf

    check_depth(nested(MAX_JSON_DEPTH))
    with pytest.raises(BadInput, match="recursion limit exceeded"):
        check_depth(nested(MAX_JSON_DEPTH + 1))
    with pytest.raises(BadInput, match="recursion limit exceeded"):
        parse_json(b"[" * 128 + b"]" * 128)
    assert parse_json(b"[" * 127 + b"]" * 127) is not None
    # a numpy array (a parsed vector column) counts its dimensions, like the JSON arrays it was
    check_depth(nested(MAX_JSON_DEPTH - 2, np.zeros((2, 2))))
    with pytest.raises(BadInput):
        check_depth(nested(MAX_JSON_DEPTH - 1, np.zeros((2, 2))))
    check_depth({"points": [[1.0] * 100 for _ in range(100)]})


def test_field_condition_with_only_a_key_is_422():
    from pydrant.http import spec_models

    with pytest.raises(ValidationFailed, match=r"\[filter\.must\[0\]: At least one field condition must be specified\]"):
        deserialize(spec_models.ScrollRequest, {"filter": {"must": [{"key": "a"}]}})
    deserialize(spec_models.ScrollRequest, {"filter": {"must": [{"key": "a", "is_empty": False}]}})


def test_sparse_vector_indices_and_values_differ_in_length_is_422():
    from pydrant.http import spec_models

    body = {"query": {"indices": [1, 2], "values": [0.5]}, "using": "s"}
    with pytest.raises(ValidationFailed, match=r"query\.values: Validation error: must be the same length as indices"):
        deserialize(spec_models.QueryRequest, body)
    body = {"vector": {"name": "s", "vector": {"indices": [1], "values": [0.5, 0.1]}}, "limit": 1}
    with pytest.raises(ValidationFailed, match=r"vector\.vector\.values"):
        deserialize(spec_models.SearchRequest, body)


def test_unknown_fields_are_dropped_before_the_engine():
    from pydrant.http import spec_models

    plain = to_plain(deserialize(spec_models.CreateCollection, {"vectors": {"size": 2, "distance": "Dot", "x": 1}, "y": 2}))
    assert plain == {"vectors": {"size": 2, "distance": "Dot"}}
    with pytest.raises(BadInput, match="Format error in JSON body: .*shuld"):
        deserialize(spec_models.Filter, {"shuld": []})
