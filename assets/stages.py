"""One Dagster asset per pipeline stage, for one daily partition.

Assets only wire the core packages (``privacy``, ``summarize``, ``clustering``,
``reporting``) and the Beam jobs (``pipelines``) together. Private state lives
under ``state_dir/<day>``; only aggregates are written under ``out_dir``.
"""

import datetime as dt
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import cast

import dagster as dg
import numpy as np
import polars as pl

from assets.resources import (
    BeamRunnerResource,
    ClusteringConfigResource,
    EmbedderResource,
    FlaggingResource,
    HierarchyResource,
    LLMResource,
    LookoutPaths,
    PrivacyResource,
    RedactionResource,
    TaxonomyResource,
)
from clustering.aggregate import CONCERN, assignments_frame, cluster_table, node_table, with_coordinates
from clustering.cluster import cluster_embeddings
from clustering.embed import embed_text, with_first_user
from clustering.hierarchy import HierarchyBuilder, cluster_means, membership
from clustering.tracking import centroids, coordination_signals, track_day
from pipelines import ingest_redact, storage, summarize
from privacy.auditor import PrivacyAuditor, split_audited
from privacy.dp import select_partitions, selection_withheld
from privacy.gate import apply_thresholds, removal_trail, threshold_violations
from privacy.release import (
    DPAccounting,
    dp_level_counts,
    parents_without_released_base,
    reattach_to_released,
    with_dp_counts,
)
from privacy.rescan import rescan_text_columns
from reporting.html import render_report
from reporting.tables import (
    build_report_tables,
    load_published,
    trailing_days,
    write_atomic,
    write_parquet_atomic,
)

START_DATE = "2026-11-01"
daily = dg.DailyPartitionsDefinition(start_date=START_DATE)
# A failed step (e.g. a Beam worker lost mid-stage) runs again; outputs are replaced atomically.
RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL)
# Days of trend in the report (today included); earlier days come from their published reports.
REPORT_TREND_DAYS = 14

REDACTED = "redacted.parquet"
INGEST_DEAD = "ingest_dead_letter.parquet"
FACETS = "facets.parquet"
FACETS_DEAD = "facets_dead_letter.parquet"
FACETS_CACHE = "facets_cache.parquet"
BASE = "base_clusters.parquet"
CLUSTERS = "clusters_all.parquet"
ASSIGNMENTS = "assignments.parquet"
MEMBERSHIP = "membership.parquet"
RELEASED = "released_clusters.parquet"
CENTROIDS = "centroids.parquet"
TRACKS = "tracks.parquet"
FLAGS = "flags.parquet"
WITHHELD = "withheld_clusters.parquet"
GATE = "gate.json"  # the budget private partition selection spent
AUDIT_CACHE = "privacy_audit_cache.parquet"  # shared by all days, under the state dir


def _markdown_table(frame: pl.DataFrame) -> str:
    if frame.is_empty():
        return "_none_"
    head = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join([head, *rows])


def _clear_beam_temp(state: Path) -> None:
    """Remove temp folders that an interrupted Beam write left behind."""
    import shutil

    for leftover in state.glob("beam-temp-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _exchange(paths: LookoutPaths, beam_runner: BeamRunnerResource, day: str) -> str | None:
    """The day's exchange folder, emptied of an earlier try's files; ``None`` without one."""
    storage.configure(beam_runner.args())  # the jobs' credentials and endpoints, for the host's copies too
    exchange = paths.exchange_for(day)
    if exchange:
        storage.delete_folder(exchange)
    return exchange


def _fetch(exchange: str | None, state: Path, names: Iterable[str]) -> None:
    """Download a Beam job's outputs from the exchange folder into the day's state, then empty it."""
    if exchange is None:
        return
    for name in names:
        storage.download(storage.join(exchange, name), state / name)
    storage.delete_folder(exchange)


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
        return pl.DataFrame(
            schema={"stage": pl.Utf8, "field": pl.Utf8, "reason": pl.Utf8, "records": pl.UInt32}
        )
    reason = pl.col("reason").str.replace(r":.*$", "")
    return (
        dead.with_columns(reason.alias("reason"))
        .group_by("stage", "field", "reason")
        .agg(pl.len().alias("records"))
        .sort("records", "stage", "field", descending=[True, False, False])
    )


@dg.asset(partitions_def=daily, group_name="lookout", retry_policy=RETRY, kinds={"beam", "presidio"})
def redacted_conversations(
    context: dg.AssetExecutionContext,
    paths: LookoutPaths,
    beam_runner: BeamRunnerResource,
    redaction: RedactionResource,
) -> dg.MaterializeResult:
    """Ingest the day's logs, dead-letter invalid records, redact PII and pseudonymize accounts."""
    day = context.partition_key
    source = paths.input_for(day)
    exchange = _exchange(paths, beam_runner, day)
    if not paths.has_input(day):
        what = "folder" if storage.is_local(source) else "no log file under"
        raise dg.Failure(f"no input for partition {day}: {what} {source} does not exist", allow_retries=False)
    state = paths.state_for(day)
    started = time.perf_counter()
    _clear_beam_temp(state)
    beam_dir = exchange or str(state)
    ingest_redact.run(
        [
            f"--input={source}",
            f"--day={day}",
            f"--output={storage.join(beam_dir, REDACTED)}",
            f"--dead_letter={storage.join(beam_dir, INGEST_DEAD)}",
            *redaction.job_args(),
            *beam_runner.args(),
        ],
    )
    _fetch(exchange, state, [REDACTED, INGEST_DEAD])
    redacted = pl.read_parquet(state / REDACTED, columns=["entities", "truncated_messages"])
    dead = pl.read_parquet(state / INGEST_DEAD)
    entities = _entity_counts(redacted)
    return dg.MaterializeResult(
        metadata={
            "records_read": len(redacted) + len(dead),
            "records_valid": len(redacted),
            "records_dead_lettered": len(dead),
            "dead_letters_by_reason": dg.MetadataValue.md(
                _markdown_table(_dead_by_reason(state / INGEST_DEAD))
            ),
            "entities_redacted": dg.MetadataValue.md(_markdown_table(entities)),
            "messages_truncated": int(redacted["truncated_messages"].sum()),
            "ner_engine": redaction.ner_engine,
            "seconds": round(time.perf_counter() - started, 2),
        }
    )


@dg.asset(
    partitions_def=daily,
    group_name="lookout",
    retry_policy=RETRY,
    deps=[redacted_conversations],
    kinds={"beam", "llm"},
)
def conversation_facets(
    context: dg.AssetExecutionContext,
    paths: LookoutPaths,
    beam_runner: BeamRunnerResource,
    llm: LLMResource,
    taxonomy: TaxonomyResource,
) -> dg.MaterializeResult:
    """Extract schema-validated facets from each redacted conversation (Beam RunInference)."""
    from dataclasses import asdict

    day = context.partition_key
    state = paths.state_for(day)
    started = time.perf_counter()
    # The previous run's facets are the cache: rows with the same key are not sent to the model again.
    cache = state / FACETS_CACHE
    if (state / FACETS).exists():
        (state / FACETS).replace(cache)
    _clear_beam_temp(state)
    exchange = _exchange(paths, beam_runner, day)
    beam_dir = exchange or str(state)
    if exchange:  # what the job reads goes up first
        for name in (REDACTED, FACETS_CACHE):
            if (state / name).exists():
                storage.upload(state / name, storage.join(exchange, name))
    summarize.run(
        [
            f"--input={storage.join(beam_dir, REDACTED)}",
            f"--output={storage.join(beam_dir, FACETS)}",
            f"--dead_letter={storage.join(beam_dir, FACETS_DEAD)}",
            f"--llm={json.dumps(asdict(llm.spec()))}",
            f"--taxonomy={taxonomy.taxonomy}",
            f"--categories={taxonomy.categories}",
            *([f"--cache={storage.join(beam_dir, FACETS_CACHE)}"] if cache.exists() else []),
            *beam_runner.args(),
        ]
    )
    _fetch(exchange, state, [FACETS, FACETS_DEAD])
    facets = pl.read_parquet(state / FACETS)
    previous = (
        pl.read_parquet(cache, columns=["cache_key"]) if cache.exists() else pl.DataFrame({"cache_key": []})
    )
    cache_hits = int(facets["cache_key"].is_in(previous["cache_key"].implode()).sum())
    cache.unlink(missing_ok=True)
    dead = pl.read_parquet(state / FACETS_DEAD)
    seconds = time.perf_counter() - started
    return dg.MaterializeResult(
        metadata={
            "conversations_with_facets": len(facets),
            "facets_dead_lettered": len(dead),
            "facet_cache_hits": cache_hits,
            "dead_letters_by_reason": dg.MetadataValue.md(
                _markdown_table(_dead_by_reason(state / FACETS_DEAD))
            ),
            "llm": dg.MetadataValue.json(llm.spec().describe()),
            "seconds": round(seconds, 2),
            "conversations_per_s": round(len(facets) / seconds, 3) if seconds else 0.0,
        }
    )


@dg.asset(
    partitions_def=daily,
    group_name="lookout",
    retry_policy=RETRY,
    deps=[conversation_facets],
    kinds={"umap", "hdbscan"},
)
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
    source = facets  # the first user turn is joined for the embedding only; no table written below carries it
    if clustering.embed_field in ("summary_first_user", "first_user"):
        source = with_first_user(
            facets, pl.read_parquet(state / REDACTED, columns=["conversation_id", "messages"])
        )
    vectors = (
        embedder.get().encode(embed_text(source, clustering.embed_field))
        if len(facets)
        else np.zeros((0, 384))
    )
    result = cluster_embeddings(vectors, clustering.params())
    names = clustering.build_namer(llm.get()).name(
        facets["summary"].to_list(), facets["topic"].to_list(), result.labels, vectors
    )
    assignments = assignments_frame(facets, result.labels, day)
    table = cluster_table(facets, assignments, names, taxonomy.get().codes, day, result.reduced)
    ids, centres = centroids(vectors, result.labels)
    _, means, sizes = cluster_means(vectors, result.labels)
    # Layout positions stay with the private assignments; reports only see cluster means.
    write_parquet_atomic(with_coordinates(assignments, result.reduced), state / ASSIGNMENTS)
    write_parquet_atomic(table, state / BASE)
    write_parquet_atomic(
        pl.DataFrame(
            {"cluster_id": ids, "centroid": centres.tolist(), "mean": means.tolist(), "size": sizes.tolist()},
            schema={
                "cluster_id": pl.Int64,
                "centroid": pl.List(pl.Float64),
                "mean": pl.List(pl.Float64),
                "size": pl.Int64,
            },
        ),
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


@dg.asset(partitions_def=daily, group_name="lookout", retry_policy=RETRY, deps=[base_clusters], kinds={"llm"})
def cluster_hierarchy(
    context: dg.AssetExecutionContext,
    paths: LookoutPaths,
    embedder: EmbedderResource,
    hierarchy: HierarchyResource,
    llm: LLMResource,
    taxonomy: TaxonomyResource,
) -> dg.MaterializeResult:
    """Group the named base clusters into mid and top levels (Clio-style) and aggregate every node."""
    day = context.partition_key
    state = paths.state_for(day)
    started = time.perf_counter()
    base = pl.read_parquet(state / BASE)
    assignments = pl.read_parquet(state / ASSIGNMENTS)
    centres = pl.read_parquet(state / CENTROIDS).sort("cluster_id")
    # Member means and sizes: the hierarchy's average linkage over members reads them.
    vectors = np.asarray(centres["mean"].to_list(), dtype=float) if len(centres) else None
    sizes = centres["size"].to_numpy() if len(centres) else None
    nodes = HierarchyBuilder(llm.get(), embedder.get(), hierarchy.params()).build(base, vectors, sizes)
    members = membership(assignments, nodes)
    facets = pl.read_parquet(state / FACETS)
    table = node_table(facets, members, nodes, taxonomy.get().codes, day)
    write_parquet_atomic(members, state / MEMBERSHIP)
    write_parquet_atomic(table, state / CLUSTERS)
    per_level = (
        table.group_by("level").agg(pl.len().alias("nodes"), pl.col("conversations").sum()).sort("level")
    )
    top = table.filter(pl.col("level") == pl.col("level").max()).sort("conversations", descending=True)
    return dg.MaterializeResult(
        metadata={
            "levels": cast(int, table["level"].max()) + 1 if len(table) else 0,
            "nodes_per_level": dg.MetadataValue.md(_markdown_table(per_level)),
            "top_level": dg.MetadataValue.md(
                _markdown_table(top.select("title", "conversations", "unique_accounts"))
            ),
            "named_by_llm": int((table["name_source"] == "llm").sum()) if len(table) else 0,
            "seconds": round(time.perf_counter() - started, 2),
        }
    )


@dg.asset(
    partitions_def=daily,
    group_name="lookout",
    retry_policy=RETRY,
    deps=[cluster_hierarchy],
    kinds={"privacy"},
)
def released_clusters(
    context: dg.AssetExecutionContext,
    paths: LookoutPaths,
    privacy: PrivacyResource,
    redaction: RedactionResource,
    llm: LLMResource,
) -> dg.MaterializeResult:
    """Nodes that pass every layer of the privacy gate; the rest are withheld and logged without text.

    Layers, in order: private partition selection on unique accounts (when on) or
    the exact account threshold; the conversation threshold; a PII re-scan that
    rewrites any hit in titles and descriptions; the LLM privacy auditor.
    """
    day = context.partition_key
    state = paths.state_for(day)
    clusters = pl.read_parquet(state / CLUSTERS)
    members = pl.read_parquet(state / MEMBERSHIP)
    layers: dict[str, pl.DataFrame] = {}
    selection_config = privacy.selection()
    selection = None
    if selection_config is None:
        released, layers["threshold"] = apply_thresholds(clusters, members, privacy.thresholds())
    else:
        selection = select_partitions(members, selection_config, salt=day)
        layers["dp_partition_selection"] = selection_withheld(clusters["cluster_id"].to_list(), selection)
        released, layers["threshold"] = apply_thresholds(
            clusters.filter(pl.col("cluster_id").is_in(selection.kept)), members, privacy.thresholds()
        )
    released, rescan_hits = rescan_text_columns(released, ["title", "description"], redaction.redactor())
    auditor = PrivacyAuditor(
        llm.get(), floor=privacy.audit_floor, cache_path=Path(paths.state_dir) / AUDIT_CACHE
    )
    audited = auditor.audit(released)
    released, layers["privacy_auditor"] = split_audited(audited)
    released = released.join(audited.select("cluster_id", "privacy_score"), on="cluster_id")
    if selection is not None:  # DP counts of a parent are sums over its released base clusters
        layers["no_released_children"] = parents_without_released_base(released, clusters)
        released = released.filter(
            ~pl.col("cluster_id").is_in(layers["no_released_children"]["cluster_id"].implode())
        )
    released = reattach_to_released(released, clusters.select("cluster_id", "parent_id"))
    trail = removal_trail(day, layers, clusters, members)
    accounting = privacy.accounting(selection)
    write_atomic(json.dumps(accounting.to_json() if accounting else {}), state / GATE)
    write_parquet_atomic(released, state / RELEASED)
    write_parquet_atomic(trail, state / WITHHELD)
    by_layer = trail.group_by("layer", "level").agg(pl.len().alias("clusters")).sort("layer", "level")
    return dg.MaterializeResult(
        metadata={
            "released": len(released),
            "withheld": len(trail),
            "withheld_by_layer": dg.MetadataValue.md(_markdown_table(by_layer)),
            "pii_rescan_hits": sum(rescan_hits.values()),
            "pii_rescan_hits_by_type": dg.MetadataValue.json(dict(rescan_hits)),
            "audit_floor": privacy.audit_floor,
            "dp_selection_epsilon": selection.epsilon if selection else "off (exact thresholds)",
            "dp_selection_delta": selection.delta if selection else "off",
            "dp_selection_thresholds": dg.MetadataValue.json(
                {str(k): v for k, v in selection.thresholds.items()}
            )
            if selection
            else "off",
            "min_accounts": privacy.min_accounts,
            "min_conversations": privacy.min_conversations,
        }
    )


@dg.asset_check(
    asset=released_clusters,
    blocking=True,
    description="Every released node was rated by the privacy auditor at or above the floor.",
)
def privacy_audit_floor(
    context: dg.AssetCheckExecutionContext, paths: LookoutPaths, privacy: PrivacyResource
) -> dg.AssetCheckResult:
    """Block the report if a released node lacks an auditor rating or is below the floor."""
    day = context.run.tags.get("dagster/partition", "")
    released = pl.read_parquet(paths.state_for(day) / RELEASED)
    failing = released.filter(
        pl.col("privacy_score").is_null() | (pl.col("privacy_score") < privacy.audit_floor)
    )
    return dg.AssetCheckResult(
        passed=failing.is_empty(),
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "failing_nodes": len(failing),
            "audit_floor": privacy.audit_floor,
            "released": len(released),
        },
    )


@dg.asset_check(
    asset=released_clusters,
    blocking=True,
    description="Every released cluster meets the k-anonymity thresholds, recounted from the assignments.",
)
def k_anonymity_thresholds(
    context: dg.AssetCheckExecutionContext, paths: LookoutPaths, privacy: PrivacyResource
) -> dg.AssetCheckResult:
    """Block the report if any released cluster is below the thresholds."""
    day = context.run.tags.get("dagster/partition", "")
    state = paths.state_for(day)
    violations = threshold_violations(
        pl.read_parquet(state / RELEASED), pl.read_parquet(state / MEMBERSHIP), privacy.thresholds()
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


def _seen_accounts(paths: LookoutPaths, days: Iterable[str]) -> set[str] | None:
    """Accounts active on the given earlier days (private state); ``None`` when there are none."""
    frames = [pl.read_parquet(Path(paths.state_dir) / d / ASSIGNMENTS, columns=["account"]) for d in days]
    return set(pl.concat(frames)["account"].to_list()) if frames else None


@dg.asset(
    partitions_def=daily,
    group_name="lookout",
    retry_policy=RETRY,
    deps=[
        base_clusters,
        dg.AssetDep(
            "cluster_tracks", partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)
        ),
    ],
    kinds={"scipy"},
)
def cluster_tracks(
    context: dg.AssetExecutionContext,
    paths: LookoutPaths,
    flagging: FlaggingResource,
    taxonomy: TaxonomyResource,
    embedder: EmbedderResource,
) -> dg.MaterializeResult:
    """Link today's clusters to earlier days' and flag new, fast-growing or coordinated high-concern clusters.

    Depends on the previous day's partition, so a backfill runs days in order and
    gives the same flags as running the days one by one.
    """
    day = context.partition_key
    state = paths.state_for(day)
    clusters = pl.read_parquet(state / BASE)
    centres = pl.read_parquet(state / CENTROIDS)
    assignments = pl.read_parquet(state / ASSIGNMENTS)
    facets = pl.read_parquet(state / FACETS)
    history, totals = _history(paths, day, flagging.window_days)
    rules = flagging.rules()
    # Near-duplicate requests are grouped by embedding similarity, not only by normalised text.
    requests = embedder.get().encode(facets["request"].fill_null("").to_list()) if len(facets) else None
    coordination = coordination_signals(
        facets, assignments, rules, request_vectors=requests, seen_accounts=_seen_accounts(paths, totals)
    )
    stored, flags = track_day(
        day,
        clusters,
        centres,
        len(assignments),
        history,
        totals,
        taxonomy.get().severity_by_code(),
        flagging.tracking(),
        rules,
        coordination,
    )
    write_parquet_atomic(stored, state / TRACKS)
    write_parquet_atomic(flags, state / FLAGS)
    return dg.MaterializeResult(
        metadata={
            "clusters": len(stored),
            "new_clusters": int(stored["is_new"].sum()) if len(stored) else 0,
            "coordinated_clusters": int(flags["coordinated"].sum()) if len(flags) else 0,
            "flagged_clusters": int(flags["flagged"].sum()) if len(flags) else 0,
            "history_days": len(totals),
        }
    )


@dg.asset(
    partitions_def=daily,
    group_name="lookout",
    retry_policy=RETRY,
    deps=[
        released_clusters,
        cluster_tracks,
        # Trends read earlier days' published reports, so a backfill publishes days in order.
        dg.AssetDep(
            "cluster_report", partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)
        ),
    ],
    kinds={"polars", "html"},
)
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
    accounting = (
        DPAccounting.from_json(json.loads((state / GATE).read_text())) if (state / GATE).exists() else None
    )
    if dp_config is not None:
        if accounting is None:
            raise dg.Failure(
                "DP is on but the gate recorded no DP accounting; rerun released_clusters",
                allow_retries=False,
            )
        members = pl.read_parquet(state / MEMBERSHIP).join(
            pl.read_parquet(state / FACETS, columns=["conversation_id", CONCERN, "categories"]),
            on="conversation_id",
        )
        noisy, counts_spent = dp_level_counts(members, released, tax.codes, dp_config, salt=day)
        if len(released) and abs(counts_spent - accounting.counts_epsilon) > 1e-9:
            raise dg.Failure(
                f"DP counts spent epsilon {counts_spent}, the gate planned {accounting.counts_epsilon}"
            )
        released = with_dp_counts(released, noisy)  # nothing exact is published
    epsilon_spent = accounting.epsilon if accounting else None
    flags = pl.read_parquet(state / FLAGS)
    released_ids = released["cluster_id"].implode()
    ingest_dead = pl.read_parquet(state / INGEST_DEAD)
    facets_dead = pl.read_parquet(state / FACETS_DEAD)
    redacted = pl.read_parquet(state / REDACTED, columns=["entities"])
    withheld = pl.read_parquet(state / WITHHELD)
    base = released.filter(pl.col("level") == 0)
    summary = {
        "records_read": len(redacted) + len(ingest_dead),
        "records_dead_lettered": len(ingest_dead),
        "facets_extracted": len(assignments),
        "facets_dead_lettered": len(facets_dead),
        "noise_conversations": int((assignments["cluster_id"] == -1).sum()),
        "clusters_released": len(released),
        "clusters_withheld": len(withheld),
        "clusters_flagged": flags.filter(pl.col("flagged") & pl.col("cluster_id").is_in(released_ids)).height,
        "flagged_clusters_withheld": flags.filter(
            pl.col("flagged") & ~pl.col("cluster_id").is_in(released_ids)
        ).height,
        "conversations_in_released_clusters": int(base["conversations"].sum()) if len(base) else 0,
        **(accounting.metrics() if accounting else {}),
    }
    dead_reasons = pl.concat(
        [_dead_by_reason(state / INGEST_DEAD), _dead_by_reason(state / FACETS_DEAD)]
    ).select("stage", "reason", "records")
    history = load_published(Path(paths.out_dir) / "reports", trailing_days(day, REPORT_TREND_DAYS - 1))
    tables = build_report_tables(
        day,
        released,
        flags,
        tax.codes,
        summary,
        dead_reasons,
        _entity_counts(redacted),
        withheld,
        history=history,
    )
    tables.write(out)
    html = render_report(
        tables,
        tax,
        history,
        min_accounts=privacy.min_accounts,
        min_conversations=privacy.min_conversations,
        trend_days=REPORT_TREND_DAYS,
    )
    write_atomic(html, out / "report.html")
    clusters = tables.clusters
    top = (
        clusters.filter(pl.col("level") == pl.col("level").max())
        .head(10)
        .select("title", "conversations", "unique_accounts", "mean_concern")
    )
    return dg.MaterializeResult(
        metadata={
            "report": dg.MetadataValue.path(str(out / "report.html")),
            "clusters_released": len(clusters),
            "dp_epsilon_spent": epsilon_spent if epsilon_spent is not None else "exact counts (DP off)",
            "top_clusters": dg.MetadataValue.md(
                _markdown_table(top.with_columns(pl.col("mean_concern").round(2)))
            ),
        }
    )
