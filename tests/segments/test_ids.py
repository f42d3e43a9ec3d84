import uuid

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pydrant.errors import BadInput
from pydrant.segments.ids import decode_id, encode_id, id_from_sort_key, id_sort_key, normalize_id

CANONICAL = "936da01f-9abd-4d9d-80c7-02af85c822a8"


@pytest.mark.parametrize(
    "spelling",
    [
        CANONICAL,
        CANONICAL.upper(),
        CANONICAL.replace("-", ""),
        CANONICAL.replace("-", "").upper(),
        "{" + CANONICAL + "}",
        "urn:uuid:" + CANONICAL,
        "urn:uuid:" + CANONICAL.upper(),
    ],
)
def test_every_uuid_spelling_normalises_to_lowercase_hyphenated(spelling):
    assert normalize_id(spelling) == CANONICAL


@pytest.mark.parametrize("value", [0, 1, 42, 2**63, 2**64 - 1, np.uint64(2**64 - 1), np.int32(7)])
def test_unsigned_integers_in_range_are_ids(value):
    normalized = normalize_id(value)
    assert normalized == int(value) and type(normalized) is int


@pytest.mark.parametrize(
    "value",
    [
        -1,
        2**64,
        True,
        False,
        1.0,
        None,
        "",
        "123",
        "not-a-uuid",
        CANONICAL[:-1],
        CANONICAL + "0",
        " " + CANONICAL,
        [1],
        {"id": 1},
        uuid.UUID(CANONICAL),  # a UUID object is not a JSON id; strings are
    ],
)
def test_other_values_are_rejected(value):
    with pytest.raises(BadInput, match="point id .* must be an unsigned integer or UUID"):
        normalize_id(value)


def test_encoding_layout():
    assert encode_id(1) == b"\x00" + (1).to_bytes(8, "big")
    assert encode_id(CANONICAL) == b"\x01" + uuid.UUID(CANONICAL).bytes


def test_decode_rejects_foreign_bytes():
    for data in [b"", b"\x00" * 8, b"\x02" + b"\x00" * 8, b"\x01" + b"\x00" * 8]:
        with pytest.raises(ValueError):
            decode_id(data)


ints = st.integers(min_value=0, max_value=2**64 - 1)
uuids = st.uuids().map(str)
point_ids = st.one_of(ints, uuids)


@given(point_ids)
def test_encode_and_sort_key_round_trip(point_id):
    assert decode_id(encode_id(point_id)) == point_id
    assert id_from_sort_key(id_sort_key(point_id)) == point_id


@given(st.lists(point_ids, max_size=30))
def test_three_orders_agree(ids):
    by_bytes = sorted(ids, key=encode_id)
    by_key = sorted(ids, key=id_sort_key)
    qdrant_order = sorted(i for i in ids if isinstance(i, int)) + sorted(
        (i for i in ids if isinstance(i, str)), key=lambda u: uuid.UUID(u).int
    )
    assert by_bytes == by_key == qdrant_order


@given(uuids)
def test_sort_key_ignores_uuid_spelling(point_id):
    assert id_sort_key(point_id.upper()) == id_sort_key(point_id.replace("-", "")) == id_sort_key(point_id)
