"""Server-side BM25: `{"text": ..., "model": "qdrant/bm25", "options": {...}}` -> a sparse vector.

Qdrant 1.15 embeds Document inputs whose model is `qdrant/bm25` (any case) on the server,
for upserts ("document" side) and for queries ("query" side); the collection's sparse
vector should have `modifier: idf`, which applies the inverse document frequency at search
time (segments/sparse_index.py). What Qdrant does (`src/common/inference/bm25.rs`):

- Options are `Bm25Config` (the spec's schema of that name): `k` (1.2), `b` (0.75),
  `avg_len` (256), `tokenizer` (`word`), `language` (`english`), `lowercase` (true),
  `stopwords`, `stemmer`, `min_token_len`, `max_token_len`. Unknown keys are ignored (serde).
  `language` picks the stopword list and the Snowball stemmer unless `stopwords` /
  `stemmer` are given; a name that is not one of Qdrant's languages (`"none"`, say) turns
  that default off.
- Text is split with the full-text index's tokenizer pipeline, query rules
  (`tokenize_query`) for documents and queries alike: split, lowercase, stopwords, stem,
  length bounds -- the same `TextAnalyzer` the payload index uses.
- A token's dimension is `|murmur3_32(utf8, seed 0) as i32|` (the `mmh3` package, the
  reference MurmurHash3 in C).
- Document: one entry per distinct token, sorted by dimension, value
  `tf * (k + 1) / (tf + k * (1 - b + b * doc_len / avg_len))` computed in f64, stored as f32.
- Query: one entry per distinct token, in order of first occurrence, value 1.0.
- No tokens: the empty sparse vector.

Any other model needs an inference service, which pydrant does not run: `InferenceUnavailable`
carries Qdrant's message for that case.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import mmh3
import numpy as np

from pydrant.errors import BadInput
from pydrant.segments.text_analyzer import (
    LANGUAGE_ALIASES,
    LANGUAGES,
    SNOWBALL_ALIASES,
    SNOWBALL_LANGUAGES,
    TOKENIZERS,
    TextAnalyzer,
)

MODEL_NAME = "qdrant/bm25"
DEFAULT_LANGUAGE = "english"
# Qdrant's message when a Document names a model that needs the (absent) inference service.
INFERENCE_UNAVAILABLE = (
    "InferenceService is not initialized. Please check if it was properly configured and initialized during startup."
)


class InferenceUnavailable(Exception):
    """A Document/Image/Object input for a model this server cannot run (no inference service)."""

    def __init__(self) -> None:
        super().__init__(INFERENCE_UNAVAILABLE)


def is_bm25(model: object) -> bool:
    return isinstance(model, str) and model.lower() == MODEL_NAME


@dataclass(frozen=True)
class Bm25:
    """One configured BM25 model: `document(text)` and `query(text)` give (indices, values)."""

    k: float
    b: float
    avg_len: float
    analyzer: TextAnalyzer

    def document(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        tokens = self.analyzer.query_terms(text)
        counts: dict[str, int] = {}
        for token in tokens:
            counts[token] = counts.get(token, 0) + 1
        doc_len = float(len(tokens))
        norm = 1.0 - self.b + self.b * doc_len / self.avg_len
        weights: dict[int, float] = {}
        for token, count in counts.items():
            weights[token_id(token)] = count * (self.k + 1.0) / (self.k * norm + count)
        dims = sorted(weights)
        return np.array(dims, dtype=np.uint32), np.array([weights[d] for d in dims], dtype=np.float32)

    def query(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        dims = list(dict.fromkeys(token_id(t) for t in self.analyzer.query_terms(text)))
        return np.array(dims, dtype=np.uint32), np.ones(len(dims), dtype=np.float32)


def token_id(token: str) -> int:
    """Qdrant's dimension of a token: murmur3 x86 32-bit, seed 0, read as i32, absolute value."""
    return abs(mmh3.hash(token.encode("utf-8"), 0, signed=True))


def model_for(options: object) -> Bm25:
    """The BM25 model for a Document's `options` (None or a Bm25Config object)."""
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise _invalid(f"expected an object of options, got {type(options).__name__}")
    return _cached_model(_freeze(options))


@lru_cache(maxsize=256)
def _cached_model(frozen: tuple) -> Bm25:
    return _build(_thaw(frozen))


def _build(options: dict) -> Bm25:
    k = _number(options, "k", 1.2)
    b = _number(options, "b", 0.75)
    avg_len = _number(options, "avg_len", 256.0)
    tokenizer = options.get("tokenizer")
    tokenizer = "word" if tokenizer is None else tokenizer
    if tokenizer not in TOKENIZERS:
        raise _invalid(f"unknown variant `{tokenizer}`, expected one of {', '.join(f'`{t}`' for t in TOKENIZERS)}")
    language = options.get("language")
    language = DEFAULT_LANGUAGE if language is None else language
    if not isinstance(language, str):
        raise _invalid(f"invalid type for `language`: expected a string, got {type(language).__name__}")
    stopwords = options.get("stopwords")
    if stopwords is None and (language in LANGUAGES or language in LANGUAGE_ALIASES):
        stopwords = language
    stemmer = options.get("stemmer")
    if stemmer is None and (language in SNOWBALL_LANGUAGES or language in SNOWBALL_ALIASES):
        stemmer = {"type": "snowball", "language": language}
    params = {
        "tokenizer": tokenizer,
        "lowercase": options.get("lowercase"),
        "stopwords": stopwords,
        "stemmer": stemmer,
        "min_token_len": options.get("min_token_len"),
        "max_token_len": options.get("max_token_len"),
    }
    try:
        analyzer = TextAnalyzer.from_params(params)
    except BadInput as exc:
        raise _invalid(str(exc).removeprefix("Wrong input: ")) from None
    return Bm25(k=k, b=b, avg_len=avg_len, analyzer=analyzer)


def _number(options: dict, key: str, default: float) -> float:
    value = options.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(f"invalid type for `{key}`: expected f64, got {type(value).__name__}")
    return float(value)


def _invalid(detail: str) -> BadInput:
    return BadInput(f"Wrong input: Invalid BM25 config: {detail}")


def _freeze(value: object) -> object:
    """A hashable image of JSON options (so equal options share one cached model)."""
    if isinstance(value, Mapping):
        return ("dict", tuple(sorted((str(k), _freeze(v)) for k, v in value.items())))
    if isinstance(value, list | tuple):
        return ("list", tuple(_freeze(v) for v in value))
    return ("value", type(value).__name__, value)


def _thaw(frozen: object) -> dict:
    def thaw(node: object) -> object:
        assert isinstance(node, tuple)
        if node[0] == "dict":
            return {k: thaw(v) for k, v in node[1]}
        if node[0] == "list":
            return [thaw(v) for v in node[1]]
        return node[2]

    result = thaw(frozen)
    assert isinstance(result, dict)
    return result
