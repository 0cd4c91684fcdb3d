"""The onnxruntime embedder against sentence-transformers on the same model."""

from __future__ import annotations

import numpy as np
import pytest

TEXTS = [
    "The user asked for help debugging a React state hook.",
    "A request to draft a polite complaint letter to a landlord.",
    "short",
    "The user wanted a vegetarian dinner plan for six people with a nut allergy, with a shopping list and timings.",
]


@pytest.fixture(scope="module")
def reference():
    from clustering.embed import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder().encode(TEXTS)


@pytest.mark.parametrize(("precision", "min_cosine"), [("fp32", 0.9999), ("int8", 0.97)])
def test_onnx_vectors_match_sentence_transformers(tmp_path_factory, reference, precision, min_cosine):
    from clustering.onnx_embed import OnnxEmbedder

    onnx = OnnxEmbedder(
        precision=precision, threads=1, cache_dir=tmp_path_factory.getbasetemp() / "onnx-models"
    )
    vectors = onnx.encode(TEXTS)
    assert vectors.shape == reference.shape and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert (vectors * reference).sum(axis=1).min() >= min_cosine
    # Batching and order do not change fp32 vectors; int8 quantizes activations per
    # batch, so a text's vector moves slightly with its batch-mates.
    one_by_one = np.vstack([onnx.encode([t]) for t in reversed(TEXTS)])[::-1]
    if precision == "fp32":
        np.testing.assert_allclose(one_by_one, vectors, atol=1e-5)
    else:
        assert (one_by_one * vectors).sum(axis=1).min() >= min_cosine
    assert np.array_equal(onnx.encode(TEXTS), vectors)  # same input, same vectors
    assert onnx.encode([]).shape == (0, reference.shape[1])


def test_unknown_precision_is_refused():
    from clustering.onnx_embed import OnnxEmbedder

    with pytest.raises(ValueError, match="precision"):
        OnnxEmbedder(precision="fp16")
