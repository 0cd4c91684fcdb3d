"""Beam job: extract facets from redacted conversations with RunInference.

Batching and the dead-letter path come from Beam: the model handler loads the
LLM once per worker, and a conversation whose model output stays invalid after
retries fails postprocessing, which ``with_exception_handling`` routes to the
dead-letter output with its reason.

    python -m pipelines.summarize --input state/2026-11-01/redacted.parquet \
        --output state/2026-11-01/facets.parquet --dead_letter state/2026-11-01/facets_dead.parquet
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any, cast

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import ModelHandler, PredictionResult, RunInference
from apache_beam.testing.test_pipeline import TestPipeline

from clustering.embed import DEFAULT_EMBEDDER, SentenceTransformerEmbedder
from pipelines.common import DEAD_LETTER_SCHEMA, FACETS_SCHEMA, split_args, write_parquet
from summarize.categories import (
    CATEGORY_METHODS,
    DEFAULT_CATEGORY_METHOD,
    CategoryMatcher,
    CategoryMethod,
    categorizer_id,
)
from summarize.extract import FacetExtractor, FacetFailure, facet_cache_key
from summarize.llm import LLMSpec
from summarize.taxonomy import DEFAULT_TAXONOMY, load_taxonomy


class FacetModelHandler(ModelHandler[dict, Any, FacetExtractor]):
    """RunInference handler: redacted conversation rows in, facet rows out."""

    def __init__(
        self,
        llm: LLMSpec,
        taxonomy: str = DEFAULT_TAXONOMY,
        *,
        categories: CategoryMethod = DEFAULT_CATEGORY_METHOD,
        max_batch_size: int = 8,
        share_across_processes: bool = True,
    ):
        super().__init__()
        self.llm = llm
        self.taxonomy = taxonomy
        self.categories = categories
        self.max_batch_size = max_batch_size
        self.share_across_processes = share_across_processes

    def categorizer(self) -> str:
        """What picks categories (part of the facet cache key), known without loading a model."""
        return categorizer_id(load_taxonomy(self.taxonomy), self.categories, DEFAULT_EMBEDDER)

    def load_model(self) -> FacetExtractor:
        """Build the LLM backend, the category matcher and the extractor (once per worker)."""
        taxonomy = load_taxonomy(self.taxonomy)
        matcher = None
        if self.categories == "examples":
            matcher = CategoryMatcher(taxonomy, SentenceTransformerEmbedder())
        return FacetExtractor(self.llm.build(), taxonomy, matcher=matcher)

    def run_inference(
        self, batch: Sequence[dict], model: FacetExtractor, inference_args: dict[str, Any] | None = None
    ) -> Iterable[PredictionResult]:
        """Facets (or a FacetFailure) per conversation; never raises for one bad record."""
        # ``model`` may be a proxy to a model shared across processes: call methods only.
        for example, outcome in zip(batch, model.extract_many(batch), strict=True):
            yield PredictionResult(example, outcome)

    def batch_elements_kwargs(self) -> dict[str, Any]:
        """Batch sizes for BatchElements."""
        return {"min_batch_size": 1, "max_batch_size": self.max_batch_size}

    def share_model_across_processes(self) -> bool:
        """One model per machine (the embedded engine is large for its host)."""
        return self.share_across_processes

    def get_metrics_namespace(self) -> str:
        """Metrics namespace."""
        return "lookout_facets"


class FacetExtractionError(ValueError):
    """The model gave no valid facets for a conversation."""


def facets_or_raise(result: PredictionResult) -> dict:
    """Postprocess: the facet row, or raise so Beam dead-letters the record."""
    inference = cast("dict | FacetFailure", result.inference)  # Beam's PredictionResult is not generic
    if isinstance(inference, FacetFailure):
        raise FacetExtractionError(f"after {inference.attempts} attempts: {inference.reason}")
    return inference


def error_reason(exc: Any) -> str:
    """``Type: message`` of a failure, without the traceback (which may quote data).

    Beam hands failures over as an exception or as ``(type, repr, traceback lines)``.
    """
    if isinstance(exc, BaseException):
        return f"{type(exc).__name__}: {exc}"[:500]
    if isinstance(exc, tuple) and len(exc) >= 2:
        kind = getattr(exc[0], "__name__", str(exc[0]))
        text = str(exc[1])
        prefix = f"{kind}("
        if text.startswith(prefix) and text.endswith(")"):
            text = text[len(prefix) : -1].strip("'\"")
        return f"{kind}: {text}"[:500]
    return str(exc)[:500]


def dead_letter_row(failed: tuple[Any, Any]) -> dict:
    """A dead-letter row for a failed RunInference element (no text kept)."""
    element, exc = failed
    if isinstance(element, PredictionResult):
        element = element.example
    if isinstance(element, (list, tuple)) and element and isinstance(element[0], dict):
        element = element[0]
    cid = element.get("conversation_id") if isinstance(element, dict) else None
    return {
        "stage": "summarize",
        "source": "redacted",
        "location": "",
        "conversation_id": cid,
        "field": "facets",
        "reason": error_reason(exc),
    }


def _failed_batch_rows(failed: tuple[Sequence[Any], Exception]) -> Iterable[dict]:
    batch, exc = failed
    for element in batch:
        yield dead_letter_row((element, exc))


class SplitByCache(beam.DoFn):
    """Route conversations whose facets are cached to the main output, the rest to ``miss``."""

    MISS = "miss"

    def __init__(self, model_id: str, taxonomy: str, categorizer: str):
        self.model_id = model_id
        self.taxonomy_name = taxonomy
        self.categorizer = categorizer
        self.hits = Metrics.counter("lookout_facets", "cache_hits")
        self.misses = Metrics.counter("lookout_facets", "cache_misses")

    def setup(self) -> None:
        """Load the taxonomy once per worker."""
        self.taxonomy = load_taxonomy(self.taxonomy_name)

    def process(self, row: dict, cache: dict[str, dict]) -> Iterable[Any]:
        """Yield the cached facet row (with this row's account and time) or the row itself as a miss."""
        key = facet_cache_key(row["messages"], self.model_id, self.taxonomy, self.categorizer)
        cached = cache.get(key)
        if cached is None:
            self.misses.inc()
            yield beam.pvalue.TaggedOutput(self.MISS, row)
            return
        self.hits.inc()
        yield {
            **cached,
            "conversation_id": row["conversation_id"],
            "account": row["account"],
            "timestamp": row["timestamp"],
        }


def build(
    p: beam.Pipeline,
    input_path: str,
    output: str,
    dead_letter: str,
    handler: FacetModelHandler,
    cache_path: str | None = None,
) -> None:
    """Add the facet extraction steps to ``p``; ``cache_path`` holds earlier facets to reuse."""
    rows = p | "Read" >> beam.io.ReadFromParquet(input_path)
    if cache_path:
        cache = (
            p
            | "ReadCache" >> beam.io.ReadFromParquet(cache_path)
            | "CacheByKey" >> beam.Map(lambda r: (r["cache_key"], r))
        )
        split = rows | "SplitByCache" >> beam.ParDo(
            SplitByCache(handler.llm.model_id, handler.taxonomy, handler.categorizer()),
            cache=beam.pvalue.AsDict(cache),
        ).with_outputs(SplitByCache.MISS, main="hit")
        cached, rows = split.hit, split[SplitByCache.MISS]
    main, dlq = (
        rows
        | "Facets" >> RunInference(handler.with_postprocess_fn(facets_or_raise)).with_exception_handling()
    )
    if cache_path:
        main = (main, cached) | "WithCached" >> beam.Flatten()
    failures = [
        dlq.failed_inferences | "BatchDead" >> beam.FlatMap(_failed_batch_rows),
        *[pc | f"PreDead{i}" >> beam.Map(dead_letter_row) for i, pc in enumerate(dlq.failed_preprocessing)],
        *[pc | f"PostDead{i}" >> beam.Map(dead_letter_row) for i, pc in enumerate(dlq.failed_postprocessing)],
    ]
    write_parquet(main, output, FACETS_SCHEMA, "WriteFacets")
    write_parquet(failures | "AllDead" >> beam.Flatten(), dead_letter, DEAD_LETTER_SCHEMA, "WriteDead")


def run(argv: Sequence[str] | None = None, test_pipeline: beam.Pipeline | None = None) -> None:
    """Run the job; the LLM is described by ``--llm`` (JSON of ``LLMSpec`` fields)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", required=True, help="redacted conversations .parquet")
    parser.add_argument("--output", required=True, help="facets .parquet")
    parser.add_argument("--dead_letter", required=True, help="dead-letter .parquet")
    parser.add_argument("--llm", default="{}", help='LLMSpec as JSON, e.g. {"kind": "vllm", ...}')
    parser.add_argument("--taxonomy", default=DEFAULT_TAXONOMY)
    parser.add_argument(
        "--categories",
        choices=CATEGORY_METHODS,
        default=DEFAULT_CATEGORY_METHOD,
        help="which category a flagged conversation gets: nearest by the taxonomy's examples, or the LLM's own",
    )
    parser.add_argument("--max_batch_size", type=int, default=8)
    parser.add_argument(
        "--cache", default="", help="earlier facets .parquet whose rows are reused by cache key"
    )
    args, options = split_args(parser, argv)
    handler = FacetModelHandler(
        LLMSpec(**json.loads(args.llm)),
        args.taxonomy,
        categories=args.categories,
        max_batch_size=args.max_batch_size,
    )
    pipeline = test_pipeline or beam.Pipeline(options=options)
    build(pipeline, args.input, args.output, args.dead_letter, handler, args.cache or None)
    result = pipeline.run()
    if not isinstance(pipeline, TestPipeline):
        result.wait_until_finish()


if __name__ == "__main__":
    logging.getLogger().setLevel(logging.INFO)
    run()
