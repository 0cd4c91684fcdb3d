"""One Dagster asset per pipeline stage, for one daily partition.

Assets only wire the core packages (``privacy``, ``summarize``, ``clustering``,
``reporting``) and the Beam jobs (``pipelines``) together. Private state lives
under ``state_dir/<day>``; only aggregates are written under ``out_dir``.
"""


import datetime as dt
import time
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl

from assets.resources import (
    BeamRunnerResource,
    ClusteringConfigResource,
    EmbedderResource,
    FlaggingResource,
    LLMResource,
    LookoutPaths,
    PrivacyResource,
    RedactionResource,
    TaxonomyResource,
)
from clustering.aggregate import assignments_frame, cluster_table
from clustering.cluster import cluster_embeddings
from clustering.naming import ClusterNamer
from clustering.tracking import centroids, flag_clusters, link_tracks
from pipelines import ingest_redact, summarize
from privacy.dp import dp_cluster_counts
from privacy.gate import apply_thresholds, threshold_violations
from privacy.rescan import rescan_text_columns
from reporting.html import render_report
from reporting.tables import (
    category_counts,
    report_clusters,
    summary_table,
    write_atomic,
    write_parquet_atomic,
)

START_DATE = "2026-11-01"
daily = dg.DailyPartitionsDefinition(start_date=START_DATE)

REDACTED = "redacted.parquet"
INGEST_DEAD = "ingest_dead_letter.parquet"
FACETS = "facets.parquet"
FACETS_DEAD = "facets_dead_letter.parquet"
FACETS_CACHE = "facets_cache.parquet"
CLUSTERS = "clusters_all.parquet"
ASSIGNMENTS = "assignments.parquet"
RELEASED = "released_clusters.parquet"
CENTROIDS = "centroids.parquet"
TRACKS = "tracks.parquet"
FLAGS = "flags.parquet"
WITHHELD = "withheld_clusters.parquet"


def _markdown_table(frame: pl.DataFrame) -> str:
    if frame.is_empty():
        return "_none_"
    head = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join([head, *rows])


def _entity_counts(redacted: pl.DataFrame) -> pl.DataFrame:
    """Redacted entities by type over the day (``entity_type``, ``count``), most frequent first."""
    if redacted.is_empty():
        return pl.DataFrame(schema={"entity_type": pl.Utf8, "count": pl.Int64})
    return (
        redacted.explode("entities")
        .unnest("entities")
        .drop_nulls()
        .group_by("entity_type")
        .agg(pl.col("count").sum())
        .sort(["count", "entity_type"], descending=[True, False])
    )


def _dead_by_reason(path: Path) -> pl.DataFrame:
    dead = pl.read_parquet(path)
    if dead.is_empty():
        return pl.DataFrame(schema={"stage": pl.Utf8, "field": pl.Utf8, "reason": pl.Utf8, "records": pl.UInt32})
    reason = pl.col("reason").str.replace(r":.*$", "")
    return (
        dead.with_columns(reason.alias("reason"))
        .group_by("stage", "field", "reason")
        .agg(pl.len().alias("records"))
        .sort("records", "stage", "field", descending=[True, False, False])
    )


@dg.asset(partitions_def=daily, group_name="lookout", kinds={"beam", "presidio"})
def redacted_conversations(
    context: dg.AssetExecutionContext,
    paths: LookoutPaths,
    beam_runner: BeamRunnerResource,
    redaction: RedactionResource,
) -> dg.MaterializeResult:
    """Ingest the day's logs, dead-letter invalid records, redact PII and pseudonymize accounts."""
    day = context.partition_key
    source = paths.input_for(day)
    if not source.is_dir():
        raise dg.Failure(f"no input for partition {day}: folder {source} does not exist")
    state = paths.state_for(day)
    started = time.perf_counter()
    ingest_redact.run(
        [
            f"--input={source}",
            f"--day={day}",
            f"--output={state / REDACTED}",
            f"--dead_letter={state / INGEST_DEAD}",
            f"--ner_engine={redaction.ner_engine}",
            *redaction.key_args(),
            *beam_runner.args(),
        ],
    )
    redacted = pl.read_parquet(state / REDACTED, columns=["entities"])
    dead = pl.read_parquet(state / INGEST_DEAD)
    entities = _entity_counts(redacted)
    return dg.MaterializeResult(
        metadata={
            "records_read": len(redacted) + len(dead),
            "records_valid": len(redacted),
            "records_dead_lettered": len(dead),
            "dead_letters_by_reason": dg.MetadataValue.md(_markdown_table(_dead_by_reason(state / INGEST_DEAD))),
            "entities_redacted": dg.MetadataValue.md(_markdown_table(entities)),
            "ner_engine": redaction.ner_engine,
            "seconds": round(time.perf_counter() - started, 2),
        }
    )


@dg.asset(partitions_def=daily, group_name="lookout", deps=[redacted_conversations], kinds={"beam", "llm"})
def conversation_facets(
    context: dg.AssetExecutionContext,
    paths: LookoutPaths,
    beam_runner: BeamRunnerResource,
    llm: LLMResource,
    taxonomy: TaxonomyResource,
) -> dg.MaterializeResult:
    """Extract schema-validated facets from each redacted conversation (Beam RunInference)."""
    import json
    from dataclasses import asdict

    day = context.partition_key
    state = paths.state_for(day)
    started = time.perf_counter()
    # The previous run's facets are the cache: rows with the same key are not sent to the model again.
    cache = state / FACETS_CACHE
    if (state / FACETS).exists():
        (state / FACETS).replace(cache)
    summarize.run(
        [
            f"--input={state / REDACTED}",
            f"--output={state / FACETS}",
            f"--dead_letter={state / FACETS_DEAD}",
            f"--llm={json.dumps(asdict(llm.spec()))}",
            f"--taxonomy={taxonomy.taxonomy}",
            *([f"--cache={cache}"] if cache.exists() else []),
            *beam_runner.args(),
        ]
    )
    facets = pl.read_parquet(state / FACETS)
    previous = pl.read_parquet(cache, columns=["cache_key"]) if cache.exists() else pl.DataFrame({"cache_key": []})
    cache_hits = int(facets["cache_key"].is_in(previous["cache_key"].implode()).sum())
    cache.unlink(missing_ok=True)
    dead = pl.read_parquet(state / FACETS_DEAD)
    seconds = time.perf_counter() - started
    return dg.MaterializeResult(
        metadata={
            "conversations_with_facets": len(facets),
            "facets_dead_lettered": len(dead),
            "facet_cache_hits": cache_hits,
            "dead_letters_by_reason": dg.MetadataValue.md(_markdown_table(_dead_by_reason(state / FACETS_DEAD))),
            "llm": dg.MetadataValue.json(llm.spec().describe()),
            "seconds": round(seconds, 2),
            "conversations_per_s": round(len(facets) / seconds, 3) if seconds else 0.0,
        }
    )


def facet_text(facets: pl.DataFrame, field: str) -> list[str]:
    """The text embedded for clustering: one facet, or summary and request together."""
    if field == "summary_request":
        return [f"{s} {r}" for s, r in zip(facets["summary"], facets["request"], strict=True)]
    return facets[field].to_list()


@dg.asset(partitions_def=daily, group_name="lookout", deps=[conversation_facets], kinds={"umap", "hdbscan"})
def base_clusters(
    context: dg.AssetExecutionContext,
    paths: LookoutPaths,
    embedder: EmbedderResource,
    clustering: ClusteringConfigResource,
    llm: LLMResource,
    taxonomy: TaxonomyResource,
) -> dg.MaterializeResult:
    """Embed facets, reduce with UMAP, cluster with HDBSCAN and name clusters with the LLM."""
    day = context.partition_key
    state = paths.state_for(day)
    facets = pl.read_parquet(state / FACETS)
    started = time.perf_counter()
    vectors = embedder.get().encode(facet_text(facets, clustering.embed_field)) if len(facets) else np.zeros((0, 384))
    result = cluster_embeddings(vectors, clustering.params())
    names = ClusterNamer(llm.get()).name(
        facets["summary"].to_list(), facets["topic"].to_list(), result.labels, vectors
    )
    assignments = assignments_frame(facets, result.labels, day)
    table = cluster_table(facets, assignments, names, taxonomy.get().codes, day, result.reduced)
    ids, centres = centroids(vectors, result.labels)
    write_parquet_atomic(assignments, state / ASSIGNMENTS)
    write_parquet_atomic(table, state / CLUSTERS)
    write_parquet_atomic(
        pl.DataFrame({"cluster_id": ids, "centroid": centres.tolist()}, schema={"cluster_id": pl.Int64, "centroid": pl.List(pl.Float64)}),
        state / CENTROIDS,
    )
    return dg.MaterializeResult(
        metadata={
            "conversations": len(facets),
            "clusters": result.n_clusters,
            "noise": result.n_noise,
            "named_by_llm": sum(n.source == "llm" for n in names),
            "seconds": round(time.perf_counter() - started, 2),
        }
    )


@dg.asset(partitions_def=daily, group_name="lookout", deps=[base_clusters], kinds={"privacy"})
def released_clusters(
    context: dg.AssetExecutionContext, paths: LookoutPaths, privacy: PrivacyResource, redaction: RedactionResource
) -> dg.MaterializeResult:
    """Clusters that meet the aggregation thresholds, with names re-scanned for PII; the rest are withheld."""
    day = context.partition_key
    state = paths.state_for(day)
    released, withheld = apply_thresholds(
        pl.read_parquet(state / CLUSTERS), pl.read_parquet(state / ASSIGNMENTS), privacy.thresholds()
    )
    released, rescan_hits = rescan_text_columns(released, ["title", "description"], redaction.redactor())
    write_parquet_atomic(released, state / RELEASED)
    write_parquet_atomic(withheld.with_columns(pl.lit(day).alias("day"), pl.lit("threshold").alias("layer")), state / WITHHELD)
    by_reason = withheld.group_by("reason").agg(pl.len().alias("clusters")).sort("reason")
    return dg.MaterializeResult(
        metadata={
            "released": len(released),
            "withheld": len(withheld),
            "withheld_by_reason": dg.MetadataValue.md(_markdown_table(by_reason)),
            "pii_rescan_hits": sum(rescan_hits.values()),
            "pii_rescan_hits_by_type": dg.MetadataValue.json(dict(rescan_hits)),
            "min_accounts": privacy.min_accounts,
            "min_conversations": privacy.min_conversations,
        }
    )


@dg.asset_check(asset=released_clusters, blocking=True, description="Every released cluster meets the k-anonymity thresholds, recounted from the assignments.")
def k_anonymity_thresholds(
    context: dg.AssetCheckExecutionContext, paths: LookoutPaths, privacy: PrivacyResource
) -> dg.AssetCheckResult:
    """Block the report if any released cluster is below the thresholds."""
    day = context.run.tags.get("dagster/partition", "")
    state = paths.state_for(day)
    violations = threshold_violations(
        pl.read_parquet(state / RELEASED), pl.read_parquet(state / ASSIGNMENTS), privacy.thresholds()
    )
    withheld = pl.read_parquet(state / WITHHELD)
    return dg.AssetCheckResult(
        passed=violations.is_empty(),
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "violating_clusters": len(violations),
            "withheld_clusters": len(withheld),
            "min_accounts": privacy.min_accounts,
            "min_conversations": privacy.min_conversations,
        },
    )


def _day_total(day_state: Path) -> int:
    """Conversations with facets on a day (the traffic denominator for growth)."""
    return pl.scan_parquet(day_state / ASSIGNMENTS).select(pl.len()).collect().item()


def _history(paths: LookoutPaths, day: str, window_days: int) -> tuple[pl.DataFrame, dict[str, int]]:
    """Tracks of the earlier days in the window that have been processed, and their totals."""
    first = dt.date.fromisoformat(day)
    frames, totals = [], {}
    for back in range(window_days, 0, -1):
        earlier = (first - dt.timedelta(days=back)).isoformat()
        tracks = Path(paths.state_dir) / earlier / TRACKS
        if tracks.exists():
            frames.append(pl.read_parquet(tracks))
            totals[earlier] = _day_total(Path(paths.state_dir) / earlier)
    history = pl.concat(frames) if frames else pl.DataFrame()
    return history, totals


@dg.asset(
    partitions_def=daily,
    group_name="lookout",
    deps=[
        base_clusters,
        dg.AssetDep("cluster_tracks", partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)),
    ],
    kinds={"scipy"},
)
def cluster_tracks(
    context: dg.AssetExecutionContext, paths: LookoutPaths, flagging: FlaggingResource, taxonomy: TaxonomyResource
) -> dg.MaterializeResult:
    """Link today's clusters to earlier days' and flag new or fast-growing high-concern clusters.

    Depends on the previous day's partition, so a backfill runs days in order and
    gives the same flags as running the days one by one.
    """
    day = context.partition_key
    state = paths.state_for(day)
    clusters = pl.read_parquet(state / CLUSTERS)
    centres = pl.read_parquet(state / CENTROIDS)
    day_total = _day_total(state)
    history, totals = _history(paths, day, flagging.window_days)
    today = np.asarray(centres["centroid"].to_list(), dtype=float) if len(centres) else np.zeros((0, 0))
    tracks = link_tracks(day, centres["cluster_id"].to_list(), today, history, flagging.tracking())
    flags = flag_clusters(
        clusters, tracks, history, day_total, totals, taxonomy.get().severity_by_code(), flagging.rules()
    )
    stored = (
        tracks.join(clusters.select("cluster_id", "conversations"), on="cluster_id")
        .join(centres, on="cluster_id")
        .with_columns(pl.lit(day).alias("day"))
    )
    write_parquet_atomic(stored, state / TRACKS)
    write_parquet_atomic(flags, state / FLAGS)
    return dg.MaterializeResult(
        metadata={
            "clusters": len(tracks),
            "new_clusters": int(tracks["is_new"].sum()) if len(tracks) else 0,
            "flagged_clusters": int(flags["flagged"].sum()) if len(flags) else 0,
            "history_days": len(totals),
        }
    )


@dg.asset(partitions_def=daily, group_name="lookout", deps=[released_clusters, cluster_tracks], kinds={"polars", "html"})
def cluster_report(
    context: dg.AssetExecutionContext,
    paths: LookoutPaths,
    privacy: PrivacyResource,
    taxonomy: TaxonomyResource,
) -> dg.MaterializeResult:
    """Parquet tables of released aggregates and the analyst HTML report."""
    day = context.partition_key
    state = paths.state_for(day)
    out = paths.report_for(day)
    tax = taxonomy.get()
    released = pl.read_parquet(state / RELEASED)
    assignments = pl.read_parquet(state / ASSIGNMENTS)
    dp_config = privacy.dp()
    epsilon_spent = None
    if dp_config is not None and len(released):
        members = assignments.join(
            pl.read_parquet(state / FACETS, columns=["conversation_id", "concerning", "categories"]), on="conversation_id"
        )
        noisy, epsilon_spent = dp_cluster_counts(members, released["cluster_id"].to_list(), tax.codes, dp_config, salt=day)
        released = released.drop(noisy.columns[1:], strict=False).join(noisy, on="cluster_id")
    flags = pl.read_parquet(state / FLAGS)
    clusters = report_clusters(released, flags)
    flagged_withheld = int(flags.filter(pl.col("flagged") & ~pl.col("cluster_id").is_in(released["cluster_id"].implode()))["flagged"].len())
    categories = category_counts(released, tax.codes)
    ingest_dead = pl.read_parquet(state / INGEST_DEAD)
    facets_dead = pl.read_parquet(state / FACETS_DEAD)
    redacted = pl.read_parquet(state / REDACTED, columns=["entities"])
    withheld = pl.read_parquet(state / WITHHELD)
    entities = _entity_counts(redacted)
    summary = {
        "records_read": len(redacted) + len(ingest_dead),
        "records_dead_lettered": len(ingest_dead),
        "facets_extracted": len(assignments),
        "facets_dead_lettered": len(facets_dead),
        "noise_conversations": int((assignments["cluster_id"] == -1).sum()),
        "clusters_released": len(released),
        "clusters_withheld": len(withheld),
        "clusters_flagged": int(clusters["flagged"].sum()),
        "flagged_clusters_withheld": flagged_withheld,
        "conversations_in_released_clusters": int(released["conversations"].sum()) if len(released) else 0,
    }
    dead_reasons = pl.concat([_dead_by_reason(state / INGEST_DEAD), _dead_by_reason(state / FACETS_DEAD)]).select("stage", "reason", "records")
    write_parquet_atomic(clusters, out / "clusters.parquet")
    write_parquet_atomic(categories, out / "cluster_categories.parquet")
    write_parquet_atomic(summary_table(day, summary), out / "run_summary.parquet")
    html = render_report(
        day, clusters, categories, tax, summary, dead_reasons, entities,
        min_accounts=privacy.min_accounts, min_conversations=privacy.min_conversations,
        flagged_withheld=flagged_withheld,
        dp_epsilon=epsilon_spent,
    )
    write_atomic(html, out / "report.html")
    top = clusters.head(10).select("title", "conversations", "unique_accounts", "mean_concern")
    return dg.MaterializeResult(
        metadata={
            "report": dg.MetadataValue.path(str(out / "report.html")),
            "clusters_released": len(clusters),
            "dp_epsilon_spent": epsilon_spent if epsilon_spent is not None else "exact counts (DP off)",
            "top_clusters": dg.MetadataValue.md(_markdown_table(top.with_columns(pl.col("mean_concern").round(2)))),
        }
    )
