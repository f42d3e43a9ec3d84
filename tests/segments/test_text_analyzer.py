"""TextAnalyzer: Qdrant 1.15's full-text tokenization (see pydrant/segments/text_analyzer.py)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pydrant.errors import BadInput
from pydrant.segments.text_analyzer import LANGUAGES, SNOWBALL_LANGUAGES, TextAnalyzer


def analyzer(**params) -> TextAnalyzer:
    return TextAnalyzer.from_params({"type": "text", **params})


def terms(a: TextAnalyzer, text: str) -> list[str]:
    return [t for _, t in a.document_terms(text)]


# -- word tokenizer ----------------------------------------------------------------------


def test_defaults_are_word_tokenizer_lowercased_without_phrase_positions():
    a = TextAnalyzer.from_params(None)
    assert a.tokenizer == "word" and a.phrase_matching is False
    assert a.document_terms("Quick, brown FOX!") == [(0, "quick"), (1, "brown"), (2, "fox")]


def test_word_splits_on_every_non_alphanumeric_character_of_any_script():
    a = analyzer()
    assert terms(a, "Grüße, мир! 東京 x2 3.14") == ["grüße", "мир", "東京", "x2", "3", "14"]


def test_word_treats_apostrophes_underscores_and_hyphens_as_separators():
    assert terms(analyzer(), "don't snake_case well-known") == ["don", "t", "snake", "case", "well", "known"]


def test_word_uses_the_unicode_alphabetic_property_like_rust():
    # Devanagari vowel signs are Alphabetic (kept inside words), the virama is not (splits).
    assert terms(analyzer(), "हिन्दी") == ["हिन", "दी"]
    # A circled letter is Alphabetic too, though its category is So.
    assert terms(analyzer(), "Ⓐb") == ["ⓐb"]


# -- whitespace tokenizer ----------------------------------------------------------------


def test_whitespace_keeps_punctuation_and_splits_on_unicode_spaces():
    a = analyzer(tokenizer="whitespace")
    assert terms(a, "Hello,  world!\u00a0x\ty\u3000z") == ["hello,", "world!", "x", "y", "z"]


def test_whitespace_query_must_carry_the_same_punctuation():
    a = analyzer(tokenizer="whitespace")
    assert a.matches_all(a.query_terms("world!"), ["hello world!"])
    assert not a.matches_all(a.query_terms("world"), ["hello world!"])


# -- prefix tokenizer --------------------------------------------------------------------


def test_prefix_documents_index_every_prefix_at_the_word_position():
    a = analyzer(tokenizer="prefix")
    assert a.document_terms("Hello yo") == [
        (0, "h"), (0, "he"), (0, "hel"), (0, "hell"), (0, "hello"), (1, "y"), (1, "yo"),
    ]  # fmt: skip


def test_prefix_bounds_limit_the_generated_prefixes():
    a = analyzer(tokenizer="prefix", min_token_len=2, max_token_len=4)
    assert a.document_terms("hello a мир") == [(0, "he"), (0, "hel"), (0, "hell"), (1, "ми"), (1, "мир")]


def test_prefix_queries_are_whole_words_truncated_to_max_len():
    a = analyzer(tokenizer="prefix", max_token_len=4)
    assert a.query_terms("Hel hello") == ["hel", "hell"]
    assert a.matches_all(a.query_terms("hel"), ["hello world"])
    assert a.matches_all(a.query_terms("hellothere"), ["hello"])  # both sides stop at "hell"
    assert not a.matches_all(a.query_terms("help"), ["hello world"])


def test_prefix_queries_keep_stopwords_so_partial_words_still_match():
    a = analyzer(tokenizer="prefix", stopwords="english")
    assert "the" not in terms(a, "the cat")
    assert a.matches_all(a.query_terms("the"), ["theory"])


def test_prefix_phrase_lets_only_the_last_word_be_a_prefix():
    a = analyzer(tokenizer="prefix")
    assert a.matches_phrase(a.query_terms("hello wor"), ["hello world"])
    assert not a.matches_phrase(a.query_terms("hel world"), ["hello world"])
    assert not a.matches_phrase(a.query_terms("world hello"), ["hello world"])


def test_prefix_phrase_drops_stopwords_like_documents_do():
    a = analyzer(tokenizer="prefix", stopwords="english")
    query = a.query_terms("king of the hill")
    assert query == ["king", "of", "the", "hill"] and query.phrase == ("king", "hill")
    assert a.matches_phrase(query, ["the king on a hill"])
    assert a.phrase_terms("king of the hill") == ["king", "hill"]


# -- multilingual tokenizer --------------------------------------------------------------


def test_multilingual_splits_cjk_per_character():
    a = analyzer(tokenizer="multilingual")
    assert terms(a, "今天是星期一") == ["今", "天", "是", "星", "期", "一"]
    assert terms(a, "テストです") == ["テ", "ス", "ト", "で", "す"]
    assert terms(a, "한국어") == ["한", "국", "어"]


def test_multilingual_cjk_queries_need_the_characters_and_phrases_need_them_in_a_row():
    a = analyzer(tokenizer="multilingual")
    assert a.matches_all(a.query_terms("星期"), ["今天是星期一"])
    assert a.matches_all(a.query_terms("期星"), ["今天是星期一"])
    assert a.matches_phrase(a.query_terms("星期"), ["今天是星期一"])
    assert not a.matches_phrase(a.query_terms("期星"), ["今天是星期一"])


def test_multilingual_folds_accents_lowercases_always_and_drops_numbers():
    a = analyzer(tokenizer="multilingual", lowercase=False)
    assert terms(a, "Café Ｑdrant 2024 abc123 It's") == ["cafe", "qdrant", "abc123", "it", "s"]


def test_multilingual_keeps_non_latin_alphabetic_words_whole():
    assert terms(analyzer(tokenizer="multilingual"), "Привет, мир") == ["привет", "мир"]


# -- length bounds -----------------------------------------------------------------------


def test_tokens_outside_the_bounds_are_dropped_not_truncated():
    a = analyzer(min_token_len=2, max_token_len=4)
    assert a.document_terms("a to tree house") == [(0, "to"), (1, "tree")]


def test_min_token_len_counts_utf8_bytes_like_qdrant():
    # "мир" has 3 characters but 6 bytes: Qdrant keeps it at min_token_len=4.
    assert terms(analyzer(min_token_len=4), "мир abc abcd") == ["мир", "abcd"]


def test_max_token_len_counts_characters():
    assert terms(analyzer(max_token_len=3), "мир мирр") == ["мир"]


def test_bounds_apply_to_query_terms_too():
    a = analyzer(min_token_len=3)
    assert a.query_terms("an apple") == ["apple"]


# -- lowercase ---------------------------------------------------------------------------


def test_lowercase_off_keeps_case_and_matching_becomes_case_sensitive():
    a = analyzer(lowercase=False)
    assert terms(a, "Hello World") == ["Hello", "World"]
    assert not a.matches_all(a.query_terms("hello"), ["Hello World"])
    assert analyzer().matches_all(analyzer().query_terms("HELLO"), ["Hello World"])


# -- stopwords ---------------------------------------------------------------------------


def test_language_stopwords_are_removed_and_do_not_take_positions():
    a = analyzer(stopwords="english")
    assert a.document_terms("The cat and the hat") == [(0, "cat"), (1, "hat")]


@pytest.mark.parametrize(
    "language, stopword",
    [("english", "the"), ("german", "und"), ("french", "et"), ("russian", "и"), ("turkish", "ve"),
     ("chinese", "的"), ("slovene", "in"), ("japanese", "の")],
)  # fmt: skip
def test_each_language_removes_its_common_stopword(language, stopword):
    assert terms(analyzer(stopwords=language), f"qdrant {stopword}") == ["qdrant"]


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_every_qdrant_language_has_a_non_empty_list(language):
    a = analyzer(stopwords=language)
    assert a._config.stopwords  # every language of Qdrant's enum is covered


def test_iso_aliases_name_languages():
    assert terms(analyzer(stopwords="en"), "the cat") == ["cat"]


def test_stopword_set_merges_languages_and_custom_case_insensitively():
    a = analyzer(stopwords={"languages": ["english"], "custom": ["Qdrant"]})
    assert terms(a, "The QDRANT engine") == ["engine"]


def test_custom_stopwords_are_case_sensitive_when_lowercase_is_off():
    a = analyzer(lowercase=False, stopwords={"custom": ["Qdrant"]})
    assert terms(a, "Qdrant qdrant") == ["qdrant"]


def test_stopwords_are_checked_before_stemming():
    # "having" is an English stopword; its stem "have" would be one too, "runs" is neither.
    a = analyzer(stopwords="english", stemmer={"type": "snowball", "language": "english"})
    assert terms(a, "having runs") == ["run"]


# -- stemming ----------------------------------------------------------------------------


def test_english_stemming_matches_inflections():
    a = analyzer(stemmer={"type": "snowball", "language": "english"})
    assert terms(a, "running runs") == ["run", "run"]
    assert a.matches_all(a.query_terms("run"), ["she was running"])


def test_stemmer_languages_accept_iso_aliases():
    a = analyzer(stemmer={"type": "snowball", "language": "de"})
    assert terms(a, "Häuser Katzen") == ["haus", "katz"]


@pytest.mark.parametrize("language", sorted(SNOWBALL_LANGUAGES))
def test_every_snowball_language_builds_and_stems(language):
    a = analyzer(stemmer={"type": "snowball", "language": language})
    assert a.query_terms("hello") != []


# -- matching semantics ------------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "  ,;  ", "the of"])
def test_a_query_without_terms_matches_nothing(query):
    a = analyzer(stopwords="english")
    q = a.query_terms(query)
    assert q == []
    assert not a.matches_all(q, ["the cat"])
    assert not a.matches_any(q, ["the cat"])
    assert not a.matches_phrase(q, ["the cat"])


def test_text_needs_every_term_in_the_union_of_the_strings():
    a = analyzer()
    q = a.query_terms("red car")
    assert a.matches_all(q, ["a red bike", "a blue car"])
    assert not a.matches_all(q, ["a red bike"])


def test_text_any_needs_one_term():
    a = analyzer()
    assert a.matches_any(a.query_terms("red car"), ["blue car"])
    assert not a.matches_any(a.query_terms("red car"), ["blue bike"])


def test_phrase_needs_consecutive_terms_in_order_within_one_string():
    a = analyzer()
    q = a.query_terms("machine learning")
    assert a.matches_phrase(q, ["deep Machine-Learning works"])
    assert not a.matches_phrase(q, ["learning machine"])
    assert not a.matches_phrase(q, ["machine that is learning"])
    assert not a.matches_phrase(q, ["a machine", "learning b"])


def test_phrase_skips_stopwords_on_both_sides():
    a = analyzer(stopwords="english")
    assert a.matches_phrase(a.query_terms("king of hill"), ["king on the hill"])


def test_phrase_matching_flag_is_reported():
    assert analyzer(phrase_matching=True).phrase_matching is True


def test_on_disk_is_accepted_and_ignored():
    assert terms(analyzer(on_disk=True), "a b") == ["a", "b"]


# -- bad parameters ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, option",
    [
        ({"tokenizer": "ngram"}, "tokenizer"),
        ({"tokenizer": 3}, "tokenizer"),
        ({"min_token_len": -1}, "min_token_len"),
        ({"min_token_len": "2"}, "min_token_len"),
        ({"max_token_len": True}, "max_token_len"),
        ({"min_token_len": 5, "max_token_len": 2}, "min_token_len"),
        ({"lowercase": "yes"}, "lowercase"),
        ({"phrase_matching": 1}, "phrase_matching"),
        ({"on_disk": "no"}, "on_disk"),
        ({"stopwords": "klingon"}, "stopwords"),
        ({"stopwords": 5}, "stopwords"),
        ({"stopwords": {"languages": ["klingon"]}}, "stopwords.languages"),
        ({"stopwords": {"languages": "english"}}, "stopwords.languages"),
        ({"stopwords": {"custom": [1]}}, "stopwords.custom"),
        ({"stopwords": {"langs": ["english"]}}, "stopwords.langs"),
        ({"stemmer": {"type": "porter", "language": "english"}}, "stemmer.type"),
        ({"stemmer": {"type": "snowball", "language": "klingon"}}, "stemmer.language"),
        ({"stemmer": {"type": "snowball"}}, "stemmer.language"),
        ({"stemmer": "english"}, "stemmer"),
        ({"stemmer": {"type": "snowball", "language": "english", "x": 1}}, "stemmer.x"),
        ({"tokeniser": "word"}, "tokeniser"),
        ({"type": "keyword"}, "type"),
    ],
)
def test_bad_params_name_the_option(params, option):
    with pytest.raises(BadInput) as caught:
        TextAnalyzer.from_params({"type": "text", **params} if "type" not in params else params)
    assert caught.value.message.startswith("Wrong input: ")
    assert f"`{option}`" in caught.value.message


def test_params_must_be_an_object():
    with pytest.raises(BadInput, match="^Wrong input: "):
        TextAnalyzer.from_params(["word"])


def test_nulls_mean_defaults():
    a = TextAnalyzer.from_params(
        {"type": "text", "tokenizer": None, "min_token_len": None, "max_token_len": None, "lowercase": None,
         "phrase_matching": None, "stopwords": None, "on_disk": None, "stemmer": None}
    )  # fmt: skip
    assert terms(a, "The Cat") == ["the", "cat"]


# -- properties --------------------------------------------------------------------------

texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60) | st.lists(
    st.sampled_from(["the", "Running", "runs", "мир", "café", "星期", "don't", "a_b", "x1", "  ", ",", "Ⓐ"]),
    max_size=12,
).map(" ".join)

params = st.fixed_dictionaries(
    {"tokenizer": st.sampled_from(["word", "whitespace", "prefix", "multilingual"])},
    optional={
        "lowercase": st.booleans(),
        "min_token_len": st.integers(1, 4),
        "max_token_len": st.integers(4, 8),
        "stopwords": st.sampled_from(["english", {"custom": ["the", "Мир"]}]),
        "stemmer": st.just({"type": "snowball", "language": "english"}),
    },
)


@settings(max_examples=300, deadline=None)
@given(text=texts, p=params)
def test_positions_start_at_zero_and_step_by_at_most_one(text, p):
    positions = [pos for pos, _ in analyzer(**p).document_terms(text)]
    assert all(b - a in (0, 1) for a, b in zip(positions, positions[1:]))
    assert not positions or positions[0] == 0


@settings(max_examples=300, deadline=None)
@given(text=texts, p=params)
def test_a_document_matches_its_own_text_as_query_and_phrase(text, p):
    if p["tokenizer"] == "prefix":
        p.pop("stopwords", None)  # prefix queries keep stopwords that documents drop
    a = analyzer(**p)
    query = a.query_terms(text)
    assert set(query) <= {t for _, t in a.document_terms(text)}
    assert a.matches_all(query, [text]) == bool(query)
    assert a.matches_phrase(query, [text]) == bool(query.phrase)


@settings(max_examples=200, deadline=None)
@given(text=texts, p=params)
def test_phrase_words_are_the_documents_words(text, p):
    a = analyzer(**p)
    words = a.phrase_terms(text)
    assert len(words) == len({pos for pos, _ in a.document_terms(text)})
