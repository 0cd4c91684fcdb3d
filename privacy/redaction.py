"""PII redaction with Presidio: batched analysis, then one operator per entity type.

The default operator replaces an entity by ``<ENTITY_TYPE>``. Per entity type a
deployment may choose ``hash`` (keyed HMAC-SHA256, so equal values stay equal
without being recoverable), ``mask`` (every character) or ``mask:N`` (all but
the last N characters).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerResult
from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import OperatorConfig

from privacy.ner import NerEngine, SpacyNerEngine
from privacy.prose import prose_view
from privacy.recognizers import load_recognizers

# Presidio runs on chunks no longer than this; a longer message is split on whitespace.
MAX_CHUNK_CHARS = 20_000
# A message longer than this is truncated (the row records it): nothing downstream
# reads further, and redaction cost grows with length.
MAX_MESSAGE_CHARS = 100_000
TRUNCATION_MARKER = "\n[truncated]"
BATCH_SIZE = 32
OPERATORS = ("replace", "hash", "mask")
HASH_HEX_CHARS = 12


class OperatorSpecError(ValueError):
    """An operator setting that names no known operator."""


# Messages written by the assistant (not by people): the costly PII tagger is
# skipped there; values found in the conversation's other messages are redacted
# wherever the assistant repeats them (see redact_conversations).
MODEL_ROLES = frozenset({"assistant"})
# Shorter found values are not echoed (they would match inside ordinary words' neighbours).
MIN_ECHO_CHARS = 3
# Echoed values match in any case ("Ana Pereira" also as "ana pereira"). Matching
# only the case found costs name recall for a few over-redactions less; both are
# measured in benchmarks/redaction.py (``conversation_echo``).
ECHO_FLAGS_ANY_CASE = re.DOTALL | re.MULTILINE | re.IGNORECASE
ECHO_FLAGS_EXACT_CASE = re.DOTALL | re.MULTILINE


@dataclass
class RedactedText:
    """Redacted text, the count of entities replaced by type, and whether it was truncated.

    ``found`` holds the ``(entity type, original value)`` pairs that were
    replaced. It lives in memory only, for :func:`redact_conversations`, and is
    never written.
    """

    text: str
    entities: Counter[str] = field(default_factory=Counter)
    truncated: bool = False
    found: set[tuple[str, str]] = field(default_factory=set, repr=False)


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


def parse_operators(spec: str | Mapping[str, str] | None) -> dict[str, str]:
    """Parse ``"EMAIL_ADDRESS=hash,PHONE_NUMBER=mask:4"`` (or a mapping) into entity -> operator.

    Raises:
        OperatorSpecError: An entry is malformed or names an unknown operator.
    """
    if not spec:
        return {}
    items = (
        spec.items()
        if isinstance(spec, Mapping)
        else (part.split("=", 1) if "=" in part else (part, "") for part in spec.split(",") if part.strip())
    )
    out = {}
    for entity, operator in items:
        entity, operator = entity.strip(), operator.strip()
        name, _, arg = operator.partition(":")
        if not entity or name not in OPERATORS or (arg and (name != "mask" or not arg.isdigit())):
            raise OperatorSpecError(
                f"bad operator setting {entity}={operator!r}: expected ENTITY=replace|hash|mask|mask:N"
            )
        out[entity] = operator
    return out


def _operator(entity: str, spec: str, hash_key: bytes | None) -> OperatorConfig:
    name, _, arg = spec.partition(":")
    if name == "hash":
        if not hash_key:
            raise OperatorSpecError(f"{entity}=hash needs a key (the deployment's pseudonym key)")
        key = hmac.new(hash_key, b"lookout-entity-hash", hashlib.sha256).digest()

        def keyed_hash(value: str) -> str:
            digest = hmac.new(key, f"{entity}:{value}".encode(), hashlib.sha256).hexdigest()
            return f"<{entity}:{digest[:HASH_HEX_CHARS]}>"

        return OperatorConfig("custom", {"lambda": keyed_hash})
    if name == "mask":
        keep = int(arg or 0)
        return OperatorConfig("custom", {"lambda": _masker(keep)})
    return OperatorConfig("replace", {"new_value": f"<{entity}>"})


def _masker(keep: int) -> Callable[[str], str]:
    def mask(value: str) -> str:
        shown = value[-keep:] if 0 < keep < len(value) else ""
        return "*" * (len(value) - len(shown)) + shown

    return mask


class Redactor:
    """Finds PII with Presidio and replaces each entity by its type's operator.

    NER reads a prose view of each text in which code is blanked except its
    comments and strings (:mod:`privacy.prose`); pattern recognizers read the
    whole text. Texts are analysed in batches through spaCy's ``nlp.pipe``, and
    recognizers with ``analyze_batch`` (the Rampart tagger) classify a whole
    batch at once.
    """

    def __init__(
        self,
        ner: NerEngine | None = None,
        *,
        language: str = "en",
        score_threshold: float = 0.35,
        entities: list[str] | None = None,
        project_recognizers: bool = True,
        operators: str | Mapping[str, str] | None = None,
        hash_key: bytes | None = None,
        max_message_chars: int = MAX_MESSAGE_CHARS,
        batch_size: int = BATCH_SIZE,
        echo_any_case: bool = True,
    ):
        self.ner = ner or SpacyNerEngine()
        self.language = language
        self.score_threshold = score_threshold
        self.entities = entities
        self.max_message_chars = max_message_chars
        self.batch_size = batch_size
        self.echo_flags = ECHO_FLAGS_ANY_CASE if echo_any_case else ECHO_FLAGS_EXACT_CASE
        self.analyzer = AnalyzerEngine(nlp_engine=self.ner.create(), supported_languages=[language])
        self.batch_recognizers: list[EntityRecognizer] = []
        if project_recognizers:
            for recognizer in load_recognizers():
                if getattr(recognizer, "batch_recognizer", False):
                    self.batch_recognizers.append(recognizer)
                else:
                    self.analyzer.registry.add_recognizer(recognizer)
        self.anonymizer = AnonymizerEngine()
        self.operator_specs = parse_operators(operators)
        self._operators = {e: _operator(e, s, hash_key) for e, s in self.operator_specs.items()}

    def operators_for(self, types: set[str]) -> dict[str, OperatorConfig]:
        """The anonymizer operator for each entity type (placeholder unless configured)."""
        return {
            t: self._operators.get(t) or OperatorConfig("replace", {"new_value": f"<{t}>"}) for t in types
        }

    def redact(self, text: str) -> RedactedText:
        """Redact one text."""
        return self.redact_batch([text])[0]

    def redact_batch(
        self,
        texts: Sequence[str],
        *,
        tagger: Sequence[bool] | None = None,
        known: Sequence[set[tuple[str, str]]] | None = None,
    ) -> list[RedactedText]:
        """Redact many texts, running NER over them in batches.

        Args:
            texts: The texts.
            tagger: Per text, whether the batch recognizers (the PII tagger) read
                it; all texts when omitted.
            known: Per text, ``(entity type, value)`` pairs found elsewhere in the
                same conversation, redacted wherever they occur in this text.
        """
        prepared: list[tuple[int, str]] = []  # (text index, chunk)
        truncated = [False] * len(texts)
        for i, text in enumerate(texts):
            if not text.strip():
                continue
            if len(text) > self.max_message_chars:
                text, truncated[i] = text[: self.max_message_chars] + TRUNCATION_MARKER, True
            prepared.extend((i, chunk) for chunk in _chunks(text, MAX_CHUNK_CHARS))
        views = [prose_view(chunk) for _, chunk in prepared]
        artifacts = self.analyzer.nlp_engine.process_batch(
            views, language=self.language, batch_size=self.batch_size
        )
        tagged = [k for k, (i, _) in enumerate(prepared) if tagger is None or tagger[i]]
        extra: list[list[RecognizerResult]] = [[] for _ in prepared]
        for recognizer in self.batch_recognizers:
            found = recognizer.analyze_batch(  # type: ignore[attr-defined]
                [prepared[k][1] for k in tagged], self.entities, views=[views[k] for k in tagged]
            )
            for k, results in zip(tagged, found, strict=True):
                extra[k].extend(r for r in results if r.score >= self.score_threshold)
        parts: list[list[str]] = [[] for _ in texts]
        counts = [Counter[str]() for _ in texts]
        found_values: list[set[tuple[str, str]]] = [set() for _ in texts]
        # One set of echo recognizers per distinct known set: a conversation's
        # replies share it, and each recognizer compiles its regex once.
        echoes: dict[frozenset[tuple[str, str]], list[EntityRecognizer]] = {}
        for k, ((i, chunk), (_, nlp_artifacts)) in enumerate(zip(prepared, artifacts, strict=True)):
            echo = None
            if known and known[i]:
                key = frozenset(known[i])
                if key not in echoes:
                    echoes[key] = echo_recognizers(known[i], self.echo_flags)
                echo = echoes[key]
            results = self.analyzer.analyze(
                text=chunk,
                language=self.language,
                entities=self.entities,
                score_threshold=self.score_threshold,
                nlp_artifacts=nlp_artifacts,
                ad_hoc_recognizers=echo or None,
            )
            results = drop_implausible(chunk, results)
            if extra[k]:
                results = EntityRecognizer.remove_duplicates(results + extra[k])
            if not results:
                parts[i].append(chunk)
                continue
            expand_name_spans(chunk, results)
            expand_phone_spans(chunk, results)
            anonymized = self.anonymizer.anonymize(
                text=chunk,
                analyzer_results=results,  # type: ignore[arg-type]
                operators=self.operators_for({r.entity_type for r in results}),
            )
            parts[i].append(anonymized.text)
            counts[i].update(item.entity_type for item in anonymized.items)
            found_values[i].update((r.entity_type, chunk[r.start : r.end]) for r in results)
        return [
            RedactedText("".join(parts[i]) if parts[i] else text, counts[i], truncated[i], found_values[i])
            for i, text in enumerate(texts)
        ]


class EchoRecognizer(EntityRecognizer):
    """Finds values already found in the conversation, as whole words (a deny list).

    Matches like Presidio's deny-list ``PatternRecognizer`` (score 1.0, whole
    words), but compiles one stdlib regex once: a deny list is built per
    conversation, and the ``regex`` module compiled each one twice, about 4x
    slower per compile.
    """

    def __init__(self, entity: str, values: Sequence[str], flags: int = ECHO_FLAGS_ANY_CASE):
        self.pattern = re.compile(
            r"(?:^|(?<=\W))(" + "|".join(re.escape(v) for v in values) + r")(?:(?=\W)|$)", flags
        )
        name = f"ConversationEcho_{entity}"
        super().__init__(supported_entities=[entity], name=name)
        self.entity = entity
        self.metadata = {
            RecognizerResult.RECOGNIZER_NAME_KEY: name,
            RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
        }

    def load(self) -> None:
        """Nothing to load: the pattern is compiled in ``__init__``."""

    def analyze(self, text: str, entities: list[str], nlp_artifacts=None) -> list[RecognizerResult]:
        """Every whole-word occurrence of a known value."""
        if entities and self.entity not in entities:
            return []
        return [
            RecognizerResult(self.entity, m.start(), m.end(), 1.0, recognition_metadata=dict(self.metadata))
            for m in self.pattern.finditer(text)
            if m.end() > m.start()
        ]


def echo_recognizers(known: set[tuple[str, str]], flags: int = ECHO_FLAGS_ANY_CASE) -> list[EntityRecognizer]:
    """Deny-list recognizers (one per entity type) for values already found in the conversation."""
    by_type: dict[str, set[str]] = {}
    for entity, value in known:
        value = value.strip()
        if len(value) >= MIN_ECHO_CHARS and entity != "DATE_TIME":
            by_type.setdefault(entity, set()).add(value)
    return [EchoRecognizer(entity, sorted(values), flags) for entity, values in sorted(by_type.items())]


# A URL written without a scheme or "www." ...
URL_PREFIX = re.compile(r"(?:[a-z][a-z0-9+.\-]*://|www\.)", re.IGNORECASE)
# ... is code when it starts or ends inside a word ("requests.ge" of "requests.get").
WORD_CHAR = re.compile(r"\w")
# NER entities spaCy reads into code and formulas: symbols no name holds, and
# member access ("pd.read_csv", "file.read").
NOT_A_NAME = re.compile(r"[\\{}\[\]<>=%~|^$;_/→]|[a-z0-9]\.[a-z]")
SPACY_RECOGNIZER = "SpacyRecognizer"
NER_NAME_TYPES = frozenset({"PERSON", "ORGANIZATION", "LOCATION", "NRP"})


def drop_implausible(text: str, results: list[RecognizerResult]) -> list[RecognizerResult]:
    """Drop URL and NER matches that read as code rather than as personal data.

    * A URL without a scheme or "www." that starts or ends inside a word is a
      member access in code (``np.array`` matched as the host ``np.ar``).
    * A spaCy name, organisation, place or group holding code symbols or a
      member access, or with no letter at all, is not one.

    Measured in ``benchmarks/redaction.py`` (``real_prompts``).
    """
    kept = []
    for result in results:
        value = text[result.start : result.end]
        if result.entity_type == "URL" and not URL_PREFIX.match(value):
            before = text[result.start - 1] if result.start else ""
            after = text[result.end : result.end + 1]
            if WORD_CHAR.match(before) or WORD_CHAR.match(after) or before == ".":
                continue
        metadata = result.recognition_metadata or {}
        if (
            metadata.get(RecognizerResult.RECOGNIZER_NAME_KEY) == SPACY_RECOGNIZER
            and result.entity_type in NER_NAME_TYPES
        ):
            if NOT_A_NAME.search(value) or not any(c.isalpha() for c in value):
                continue
        kept.append(result)
    return kept


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
            match = (
                NAME_WORD.match(text, result.end + 1) if text[result.end : result.end + 1] == " " else None
            )
            if not match:
                break
            result.end = match.end()


# An international calling code ("+41", "0041") written just before a number.
CALLING_CODE = re.compile(r"(?:\+|\b00)\d{1,3}[ .\-]?$")


def expand_phone_spans(text: str, results: list) -> None:
    """Grow PHONE_NUMBER spans over a calling code just before them, in place.

    For numbers such as "+41 (0)96 471 07 95" the phone recognizer may match
    only from the trunk prefix "(0)" on, leaving the country code in the text.
    """
    for result in results:
        if result.entity_type == "PHONE_NUMBER":
            match = CALLING_CODE.search(text, max(0, result.start - 8), result.start)
            if match:
                result.start = match.start()


def _sentence_start(text: str, index: int) -> bool:
    """Whether ``index`` starts a sentence (so a capital there says nothing about names)."""
    head = text[:index].rstrip()
    return not head or head[-1] in ".!?:\n\"'(“"


def redact_conversations(conversations: Sequence, redactor: Redactor, pseudonymize) -> list[dict]:
    """Redact validated conversations into the rows stored after this stage.

    A row holds no raw text and no raw account ID: message texts are redacted,
    and the account ID is replaced by its keyed pseudonym. People's messages
    (user, system, tool) of all conversations are redacted in one batch with
    every recognizer; then the assistant's messages, without the costly PII
    tagger but with every value found in the same conversation's other messages
    redacted wherever the assistant repeats it.

    Args:
        conversations: ``summarize.records.Conversation`` objects.
        redactor: The PII redactor.
        pseudonymize: Callable mapping a raw account ID to its pseudonym.
    """
    texts, dropped, owner, by_model = [], [], [], []
    for c, conversation in enumerate(conversations):
        for message in conversation.messages:
            text, parts = message.text()
            texts.append(text)
            dropped.append(parts)
            owner.append(c)
            by_model.append(message.role in MODEL_ROLES)
    people = [i for i, m in enumerate(by_model) if not m]
    model = [i for i, m in enumerate(by_model) if m]
    results: list[RedactedText | None] = [None] * len(texts)
    known: list[set[tuple[str, str]]] = [set() for _ in conversations]
    for i, result in zip(people, redactor.redact_batch([texts[i] for i in people]), strict=True):
        results[i] = result
        known[owner[i]] |= result.found
    answers = redactor.redact_batch(
        [texts[i] for i in model], tagger=[False] * len(model), known=[known[owner[i]] for i in model]
    )
    for i, result in zip(model, answers, strict=True):
        results[i] = result
    redacted = iter(zip(results, dropped, strict=True))
    rows = []
    for conversation in conversations:
        messages, counts, dropped_parts, truncated = [], Counter[str](), 0, 0
        for message in conversation.messages:
            redacted_text, parts = next(redacted)
            assert redacted_text is not None
            dropped_parts += parts
            truncated += redacted_text.truncated
            counts.update(redacted_text.entities)
            messages.append({"role": message.role, "content": redacted_text.text})
        rows.append(
            {
                "conversation_id": conversation.conversation_id,
                "account": pseudonymize(conversation.account_id),
                "timestamp": conversation.timestamp,
                "messages": messages,
                "entities": [{"entity_type": k, "count": v} for k, v in sorted(counts.items())],
                "dropped_parts": dropped_parts,
                "truncated_messages": truncated,
            }
        )
    return rows


def redact_conversation(conversation, redactor: Redactor, pseudonymize) -> dict:
    """Redact one validated conversation (see :func:`redact_conversations`)."""
    return redact_conversations([conversation], redactor, pseudonymize)[0]
