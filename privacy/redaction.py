"""PII redaction with Presidio: analyzer plus type-placeholder anonymization."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from presidio_analyzer import AnalyzerEngine
from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import OperatorConfig

from privacy.ner import NerEngine, SpacyNerEngine
from privacy.recognizers import load_recognizers

# Presidio runs on chunks no longer than this; a longer message is split on whitespace.
MAX_CHUNK_CHARS = 20_000



@dataclass
class RedactedText:
    """Redacted text and the count of entities replaced, by type."""

    text: str
    entities: Counter[str] = field(default_factory=Counter)


def _chunks(text: str, limit: int) -> list[str]:
    if len(text) <= limit:
        return [text]
    out, start = [], 0
    while start < len(text):
        end = min(start + limit, len(text))
        if end < len(text):
            cut = text.rfind(" ", start + limit // 2, end)
            end = cut + 1 if cut > 0 else end
        out.append(text[start:end])
        start = end
    return out


class Redactor:
    """Finds PII with Presidio and replaces each entity by ``<ENTITY_TYPE>``."""

    def __init__(
        self,
        ner: NerEngine | None = None,
        *,
        language: str = "en",
        score_threshold: float = 0.35,
        entities: list[str] | None = None,
        project_recognizers: bool = True,
    ):
        self.ner = ner or SpacyNerEngine()
        self.language = language
        self.score_threshold = score_threshold
        self.entities = entities
        self.analyzer = AnalyzerEngine(
            nlp_engine=self.ner.create(), supported_languages=[language]
        )
        if project_recognizers:
            for recognizer in load_recognizers():
                self.analyzer.registry.add_recognizer(recognizer)
        self.anonymizer = AnonymizerEngine()

    def _operators(self, types: set[str]) -> dict[str, OperatorConfig]:
        return {t: OperatorConfig("replace", {"new_value": f"<{t}>"}) for t in types}

    def redact(self, text: str) -> RedactedText:
        """Redact one text."""
        if not text.strip():
            return RedactedText(text)
        parts, counts = [], Counter[str]()
        for chunk in _chunks(text, MAX_CHUNK_CHARS):
            results = self.analyzer.analyze(
                text=chunk,
                language=self.language,
                entities=self.entities,
                score_threshold=self.score_threshold,
            )
            if not results:
                parts.append(chunk)
                continue
            expand_name_spans(chunk, results)
            anonymized = self.anonymizer.anonymize(
                text=chunk,
                analyzer_results=results,  # type: ignore[arg-type]
                operators=self._operators({r.entity_type for r in results}),
            )
            parts.append(anonymized.text)
            counts.update(item.entity_type for item in anonymized.items)
        return RedactedText("".join(parts), counts)


NAME_WORD = re.compile(r"[A-Z][a-zà-ÿ'\-]+")


def expand_name_spans(text: str, results: list) -> None:
    """Grow PERSON spans over adjacent capitalised words, in place.

    NER often tags only part of a name ("Romesh <PERSON>"); a capitalised word
    joined to a PERSON span by one space is taken as part of the name.
    """
    for result in results:
        if result.entity_type != "PERSON":
            continue
        while True:
            before = text[: result.start]
            match = re.search(r"([A-Z][a-zà-ÿ'\-]+) $", before)
            if not match or _sentence_start(before, match.start(1)):
                break
            result.start = match.start(1)
        while True:
            match = NAME_WORD.match(text, result.end + 1) if text[result.end : result.end + 1] == " " else None
            if not match:
                break
            result.end = match.end()


def _sentence_start(text: str, index: int) -> bool:
    """Whether ``index`` starts a sentence (so a capital there says nothing about names)."""
    head = text[:index].rstrip()
    return not head or head[-1] in ".!?:\n\"'(“"


def redact_conversation(conversation, redactor: Redactor, pseudonymize) -> dict:
    """Redact a validated conversation into the row stored after this stage.

    The row holds no raw text and no raw account ID: message texts are
    redacted, and the account ID is replaced by its keyed pseudonym.

    Args:
        conversation: A ``summarize.records.Conversation``.
        redactor: The PII redactor.
        pseudonymize: Callable mapping a raw account ID to its pseudonym.
    """
    messages, counts, dropped_parts = [], Counter[str](), 0
    for message in conversation.messages:
        text, dropped = message.text()
        dropped_parts += dropped
        redacted = redactor.redact(text)
        counts.update(redacted.entities)
        messages.append({"role": message.role, "content": redacted.text})
    return {
        "conversation_id": conversation.conversation_id,
        "account": pseudonymize(conversation.account_id),
        "timestamp": conversation.timestamp,
        "messages": messages,
        "entities": [{"entity_type": k, "count": v} for k, v in sorted(counts.items())],
        "dropped_parts": dropped_parts,
    }
