"""Server-side BM25 (collection/bm25.py): tokens, dimensions and weights as Qdrant computes them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pydrant.collection.bm25 import is_bm25, model_for, token_id
from pydrant.errors import BadInput


def test_token_id_is_murmur3_seed0_absolute():
    # MurmurHash3 x86_32("hello", seed 0) = 0x248bfa47, a positive i32.
    assert token_id("hello") == 0x248BFA47
    # A hash with the sign bit set is negated as an i32 (unsigned_abs), not read as u32.
    negative = next(w for w in ("a", "b", "c", "d", "e", "f", "g", "h") if _raw_u32(w) >= 2**31)
    assert token_id(negative) == 2**32 - _raw_u32(negative)


def _raw_u32(text: str) -> int:
    import mmh3

    return mmh3.hash(text.encode(), 0, signed=False)


def test_document_defaults_english_stopwords_and_stemming():
    indices, values = model_for(None).document("The runner was running to run")
    # "the", "was", "to" are English stopwords; runner/running/run stem to "runner", "run", "run".
    expected = sorted({token_id("runner"), token_id("run")})
    assert indices.tolist() == expected
    doc_len = 3  # runner, run, run
    norm = 1 - 0.75 + 0.75 * doc_len / 256
    by_dim = dict(zip(indices.tolist(), values.tolist(), strict=True))
    assert by_dim[token_id("run")] == pytest.approx(np.float32(2 * 2.2 / (1.2 * norm + 2)))
    assert by_dim[token_id("runner")] == pytest.approx(np.float32(1 * 2.2 / (1.2 * norm + 1)))
    assert values.dtype == np.float32 and indices.dtype == np.uint32


def test_query_unique_tokens_in_first_occurrence_order_with_unit_weights():
    indices, values = model_for({}).query("Cookies and more cookies, chocolate")
    assert indices.tolist() == [token_id("cooki"), token_id("chocol")]
    assert values.tolist() == [1.0, 1.0]


def test_empty_and_stopword_only_texts_give_the_empty_vector():
    for text in ("", "   ", "the and of"):
        indices, values = model_for(None).document(text)
        assert len(indices) == 0 and len(values) == 0


def test_language_none_turns_off_stopwords_and_stemming():
    indices, _ = model_for({"language": "none"}).query("the running")
    assert indices.tolist() == [token_id("the"), token_id("running")]


def test_explicit_options_override_the_language_defaults():
    bm25 = model_for({"language": "german", "stopwords": {"custom": ["foo"]}, "lowercase": False, "k": 2.0, "b": 0})
    indices, values = bm25.document("Foo foo Bar")
    # case kept, only the exact custom stopword "foo" dropped; German stemming of "Foo"/"Bar"
    assert len(indices) == 2
    # b = 0: no length normalisation, each distinct token once: tf = 1 * 3 / (2 + 1)
    assert values.tolist() == [1.0, 1.0]


def test_unknown_options_are_ignored_like_serde():
    assert model_for({"whatever": 1}).query("cookies")[0].tolist() == [token_id("cooki")]


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"k": "big"}, "`k`"),
        ({"tokenizer": "nope"}, "unknown variant `nope`"),
        ({"language": 5}, "`language`"),
        ({"stemmer": {"type": "porter"}}, "stemmer"),
        ([1, 2], "expected an object"),
    ],
)
def test_invalid_options_are_wrong_input(options, fragment):
    with pytest.raises(BadInput) as info:
        model_for(options)
    message = str(info.value)
    assert message.startswith("Wrong input: Invalid BM25 config: ")
    assert fragment in message


def test_model_name_is_case_insensitive():
    assert is_bm25("qdrant/bm25") and is_bm25("Qdrant/bm25") and is_bm25("QDRANT/BM25")
    assert not is_bm25("sentence-transformers/all-MiniLM-L6-v2") and not is_bm25(None)


@given(st.lists(st.sampled_from(["alpha", "beta", "gamma", "delta", "omega"]), max_size=30))
def test_document_weights_follow_the_formula(words):
    indices, values = model_for({"language": "none"}).document(" ".join(words))
    counts: dict[str, int] = {}
    for w in words:
        counts[w] = counts.get(w, 0) + 1
    norm = 1 - 0.75 + 0.75 * len(words) / 256
    expected = {token_id(w): np.float32(c * 2.2 / (1.2 * norm + c)) for w, c in counts.items()}
    assert indices.tolist() == sorted(expected)
    assert values.tolist() == [expected[d] for d in indices.tolist()]
