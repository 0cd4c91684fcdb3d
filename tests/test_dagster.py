"""Dagster: Definitions load, the privacy gate blocks reports, and one real partition end to end."""

from __future__ import annotations

import html
import json

import dagster as dg
import numpy as np
import polars as pl
import pytest

from assets import stages
from assets.definitions import RESOURCES_BY_DEPLOYMENT, build_definitions, local_resources
from assets.resources import EmbeddedLLMResource, LLMResource
from clustering.aggregate import NODE_SCHEMA, assignments_frame, cluster_table, node_table, with_coordinates
from clustering.hierarchy import membership
from clustering.naming import NamedCluster
from privacy.gate import Thresholds, apply_thresholds, threshold_violations
from summarize.embedded import SMALL_MODEL
from summarize.llm import LLM, LLMSpec
from tests.conftest import SAMPLE

DAY = "2026-11-04"


@pytest.mark.parametrize("deployment", sorted(RESOURCES_BY_DEPLOYMENT))
def test_definitions_load(deployment):
    defs = build_definitions(deployment)
    job = defs.resolve_job_def("daily_pipeline")
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {
        "redacted_conversations",
        "conversation_facets",
        "base_clusters",
        "cluster_hierarchy",
        "released_clusters",
        "cluster_tracks",
        "cluster_report",
    }
    assert job.partitions_def is not None
    checks = list(defs.resolve_asset_graph().asset_check_keys)
    assert sorted(c.name for c in checks) == ["k_anonymity_thresholds", "privacy_audit_floor"]
    assert stages.k_anonymity_thresholds.check_specs_by_output_name  # defined as a check
    assert next(iter(stages.k_anonymity_thresholds.check_specs)).blocking


def test_unknown_deployment_is_an_error():
    with pytest.raises(ValueError, match="LOOKOUT_DEPLOYMENT"):
        build_definitions("staging")


# --- the gate, on synthetic clusters (no models) ---------------------------------


def synthetic_state(state_dir, accounts_per_cluster):
    """Write the state files the gate and the report read, for one day."""
    day_state = state_dir / DAY
    day_state.mkdir(parents=True)
    rows, labels = [], []
    for cid, accounts in enumerate(accounts_per_cluster):
        for i in range(5):
            rows.append(
                {
                    "conversation_id": f"c{cid}-{i}",
                    "account": f"p_{cid}_{i % accounts}",
                    "summary": f"summary {cid}",
                    "request": "r",
                    "task": "coding",
                    "topic": "t",
                    "concerning": 1,
                    "concern_score": 1.0,
                    "categories": [],
                }
            )
            labels.append(cid)
    facets = pl.DataFrame(rows, schema_overrides={"categories": pl.List(pl.Utf8)})
    facets.write_parquet(day_state / stages.FACETS)
    assignments = assignments_frame(facets, np.array(labels), DAY)
    names = [NamedCluster(c, f"Cluster title {c}", "desc", "llm") for c in range(len(accounts_per_cluster))]
    codes = ["vcr", "ncr"]
    table = cluster_table(facets, assignments, names, codes, DAY)
    assignments.write_parquet(day_state / stages.ASSIGNMENTS)
    table.write_parquet(day_state / stages.BASE)
    # Two more levels: one mid node per base cluster, and one top node over all of them.
    n = len(accounts_per_cluster)
    nodes = pl.DataFrame(
        {
            "cluster_id": [*range(n), *range(n, 2 * n), 2 * n],
            "level": [0] * n + [1] * n + [2],
            "parent_id": [*range(n, 2 * n), *([2 * n] * n), None],
            "title": [f"Cluster title {c}" for c in range(n)]
            + [f"Mid title {c}" for c in range(n)]
            + ["Top title"],
            "description": ["desc"] * (2 * n + 1),
            "name_source": ["llm"] * (2 * n + 1),
        },
        schema=NODE_SCHEMA,
    )
    members = membership(with_coordinates(assignments, None), nodes)
    members.write_parquet(day_state / stages.MEMBERSHIP)
    node_table(facets, members, nodes, codes, DAY).write_parquet(day_state / stages.CLUSTERS)
    ids = list(range(len(accounts_per_cluster)))
    pl.DataFrame(
        {"cluster_id": ids, "centroid": np.eye(len(ids), 8).tolist()},
        schema={"cluster_id": pl.Int64, "centroid": pl.List(pl.Float64)},
    ).write_parquet(day_state / stages.CENTROIDS)
    pl.DataFrame({"entities": [[{"entity_type": "PERSON", "count": 1}]] * len(rows)}).write_parquet(
        day_state / stages.REDACTED
    )
    empty_dead = pl.DataFrame(
        schema={c: pl.Utf8 for c in ["stage", "source", "location", "conversation_id", "field", "reason"]}
    )
    empty_dead.write_parquet(day_state / stages.INGEST_DEAD)
    empty_dead.write_parquet(day_state / stages.FACETS_DEAD)


class ScriptedAuditor(LLM):
    """Test double for the privacy auditor: texts with PRIVATE-DETAIL score 1, others 5."""

    model_id = "test:auditor"

    def generate_json(self, request):
        if "PRIVATE-DETAIL" in request.messages[-1]["content"]:
            return json.dumps({"details": "PRIVATE-DETAIL", "score": 1})
        return json.dumps({"details": "none", "score": 5})


class ScriptedAuditorResource(LLMResource):
    """Serves the scripted auditor (unit tests only)."""

    def spec(self) -> LLMSpec:
        return LLMSpec(kind="embedded", model="test")

    def get(self) -> LLM:
        return ScriptedAuditor()


def gate_resources(tmp_path):
    resources = local_resources(
        input_dir=str(tmp_path / "in"), out_dir=str(tmp_path / "out"), state_dir=str(tmp_path / "state")
    )
    resources["privacy"] = stages.PrivacyResource(
        min_accounts=3, min_conversations=3, dp_epsilon=None
    )  # exact thresholds
    resources["llm"] = ScriptedAuditorResource()
    return resources


def test_auditor_withholds_private_text_and_logs_it_without_text(tmp_path):
    synthetic_state(tmp_path / "state", accounts_per_cluster=[5, 4])
    clusters_path = tmp_path / "state" / DAY / stages.CLUSTERS
    clusters = pl.read_parquet(clusters_path)
    clusters.with_columns(
        pl.when(pl.col("cluster_id").is_in([0, 3]))
        .then(pl.lit("Help PRIVATE-DETAIL plan a party"))
        .otherwise(pl.col("title"))
        .alias("title")
    ).write_parquet(clusters_path)
    result = dg.materialize(
        [stages.released_clusters, stages.k_anonymity_thresholds, stages.privacy_audit_floor],
        partition_key=DAY,
        resources=gate_resources(tmp_path),
    )
    assert result.success and all(c.passed for c in result.get_asset_check_evaluations())
    released = pl.read_parquet(tmp_path / "state" / DAY / stages.RELEASED)
    assert sorted(released["cluster_id"].to_list()) == [1, 2, 4]
    assert (released["privacy_score"] >= 3).all()
    # base cluster 1's parent (mid node 3) was withheld: it now hangs from the top node
    assert released.filter(pl.col("cluster_id") == 1)["parent_id"].to_list() == [4]
    trail = pl.read_parquet(tmp_path / "state" / DAY / stages.WITHHELD)
    assert sorted(trail["cluster_id"].to_list()) == [0, 3] and set(trail["layer"]) == {"privacy_auditor"}
    assert trail.filter(pl.col("cluster_id") == 0)["conversations"].to_list() == [5]
    assert "PRIVATE" not in str(trail.to_dicts())


def test_dp_partition_selection_replaces_the_account_threshold(tmp_path):
    synthetic_state(tmp_path / "state", accounts_per_cluster=[5, 2])
    resources = gate_resources(tmp_path)
    resources["privacy"] = stages.PrivacyResource(
        min_accounts=3, min_conversations=3, dp_selection_epsilon=1.0, dp_selection_delta=1e-9
    )
    result = dg.materialize(
        [stages.released_clusters, stages.k_anonymity_thresholds], partition_key=DAY, resources=resources
    )
    assert result.success
    trail = pl.read_parquet(tmp_path / "state" / DAY / stages.WITHHELD)
    # at delta 1e-9 the selection threshold is far above these tiny clusters: nothing is released
    assert pl.read_parquet(tmp_path / "state" / DAY / stages.RELEASED).is_empty()
    assert set(trail["layer"]) == {"dp_partition_selection"}
    gate = json.loads((tmp_path / "state" / DAY / stages.GATE).read_text())
    assert gate["selection_epsilon"] > 0 and 0 < gate["selection_delta"] <= 1e-9
    assert (
        gate["epsilon"] == gate["selection_epsilon"] + gate["counts_epsilon"]
        and gate["delta"] == gate["selection_delta"]
    )


def test_gate_withholds_small_cluster_from_report(tmp_path):
    synthetic_state(tmp_path / "state", accounts_per_cluster=[5, 2, 4])  # cluster 1 has 2 accounts
    result = dg.materialize(
        [
            stages.released_clusters,
            stages.k_anonymity_thresholds,
            stages.cluster_tracks,
            stages.cluster_report,
        ],
        partition_key=DAY,
        resources=gate_resources(tmp_path),
    )
    assert result.success
    [check] = result.get_asset_check_evaluations()
    assert check.passed
    report = pl.read_parquet(tmp_path / "out" / "reports" / DAY / "clusters.parquet")
    assert sorted(report.filter(pl.col("level") == 0)["title"]) == ["Cluster title 0", "Cluster title 2"]
    assert sorted(report.filter(pl.col("level") == 1)["title"]) == ["Mid title 0", "Mid title 2"]
    assert report.filter(pl.col("level") == 2)["title"].to_list() == ["Top title"]
    parents = dict(zip(report["cluster_id"], report["parent_id"], strict=True))
    assert parents[0] == 3 and parents[3] == 6 and parents[6] is None
    html = (tmp_path / "out" / "reports" / DAY / "report.html").read_text()
    assert "Cluster title 0" in html and "Cluster title 1" not in html


def test_failing_gate_check_blocks_the_report(tmp_path, monkeypatch):
    """If the gate released a sub-threshold cluster, the blocking check stops the report."""
    synthetic_state(tmp_path / "state", accounts_per_cluster=[5, 2])

    def broken_gate(clusters, assignments, thresholds):
        return clusters, clusters.select("cluster_id").with_columns(pl.lit("").alias("reason")).head(0)

    monkeypatch.setattr(stages, "apply_thresholds", broken_gate)
    result = dg.materialize(
        [
            stages.released_clusters,
            stages.k_anonymity_thresholds,
            stages.cluster_tracks,
            stages.cluster_report,
        ],
        partition_key=DAY,
        resources=gate_resources(tmp_path),
        raise_on_error=False,
    )
    [check] = result.get_asset_check_evaluations()
    # cluster 1 and the mid-level node holding only it are both under the thresholds
    assert not check.passed and check.metadata["violating_clusters"].value == 2
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "cluster_report" not in materialized
    assert not (tmp_path / "out" / "reports" / DAY / "clusters.parquet").exists()


@pytest.mark.parametrize(
    ("accounts", "conversations", "released"),
    [(3, 3, True), (2, 5, False), (5, 2, False)],
)
def test_thresholds(accounts, conversations, released):
    assignments = pl.DataFrame(
        {
            "conversation_id": [f"c{i}" for i in range(conversations)],
            "account": [f"a{i % accounts}" for i in range(conversations)],
            "cluster_id": [0] * conversations,
        }
    )
    clusters = pl.DataFrame({"cluster_id": [0], "title": ["x"]})
    out, withheld = apply_thresholds(clusters, assignments, Thresholds(3, 3))
    assert (len(out) == 1) is released and (len(withheld) == 1) is not released
    assert threshold_violations(clusters, assignments, Thresholds(3, 3)).is_empty() is released


def test_noise_is_never_a_cluster():
    assignments = pl.DataFrame(
        {"conversation_id": ["a", "b", "c"], "account": ["x", "y", "z"], "cluster_id": [-1, -1, -1]}
    )
    clusters = pl.DataFrame({"cluster_id": [-1], "title": ["noise"]})
    released, _ = apply_thresholds(clusters, assignments, Thresholds(1, 1))
    assert released.is_empty()


# --- one real partition ------------------------------------------------------------


@pytest.fixture(scope="module")
def small_day(tmp_path_factory):
    """A real partition: 14 sample conversations of one day plus malformed records."""
    root = tmp_path_factory.mktemp("e2e")
    src = root / "in" / DAY
    src.mkdir(parents=True)
    lines = (SAMPLE / DAY / "conversations.jsonl").read_text(encoding="utf-8").splitlines()
    valid = [line for line in lines if _is_valid(line)][:14]
    malformed = [line for line in lines if not _is_valid(line)]
    (src / "conversations.jsonl").write_text("\n".join(valid + malformed) + "\n", encoding="utf-8")
    defs = build_definitions(
        "local",
        paths={"input_dir": str(root / "in"), "out_dir": str(root / "out"), "state_dir": str(root / "state")},
        overrides={
            "privacy": stages.PrivacyResource(
                min_accounts=2, min_conversations=2, dp_selection_epsilon=6.0, dp_demo_budget=True
            ),
            "llm": EmbeddedLLMResource(model=SMALL_MODEL),  # mechanics, not facet quality
        },
    )
    job = defs.resolve_job_def("daily_pipeline")
    result = job.execute_in_process(
        partition_key=DAY, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )
    return root, result, valid, malformed


def _is_valid(line: str) -> bool:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return False
    import datetime as dt

    from summarize.records import RecordError, parse_record

    try:
        parse_record(record, source="x", location="x", day=dt.date.fromisoformat(DAY))
    except RecordError:
        return False
    return True


@pytest.mark.slow
def test_partition_produces_report(small_day):
    root, result, valid, malformed = small_day
    assert result.success
    report_dir = root / "out" / "reports" / DAY
    assert {p.name for p in report_dir.iterdir()} == {
        "clusters.parquet",
        "cluster_categories.parquet",
        "run_summary.parquet",
        "dead_letters.parquet",
        "redacted_entities.parquet",
        "withheld_by_layer.parquet",
        "report.html",
    }
    summary = pl.read_parquet(report_dir / "run_summary.parquet")
    metrics = dict(zip(summary["metric"], summary["value"], strict=True))
    assert metrics["records_read"] == len(valid) + len(malformed)
    assert metrics["records_dead_lettered"] == len(malformed)
    assert metrics["facets_extracted"] + metrics["facets_dead_lettered"] == len(valid)
    ingest = next(
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "redacted_conversations"
    )
    assert ingest.materialization.metadata["records_dead_lettered"].value == len(malformed)
    clusters = pl.read_parquet(report_dir / "clusters.parquet")
    released = pl.read_parquet(root / "state" / DAY / stages.RELEASED)  # exact counts, private
    assert len(clusters) > 0, "DP selection at the demo budget releases the day's larger clusters"
    assert sorted(clusters["cluster_id"]) == sorted(released["cluster_id"])
    assert (released["unique_accounts"] >= 2).all()
    hierarchy = pl.read_parquet(root / "state" / DAY / stages.CLUSTERS)
    assert set(hierarchy["level"]) == {0, 1, 2}, "base, mid and top levels"
    published = set(clusters["cluster_id"])
    assert all(p is None or p in published for p in clusters["parent_id"]), (
        "the published tree has no dangling parents"
    )
    assert (clusters["conversations"] >= 0).all()  # published counts are DP-noised
    assert "differentially private" in (report_dir / "report.html").read_text().lower()
    assert not {"summary", "request", "account", "conversation_id", "messages"} & set(clusters.columns)


@pytest.mark.slow
def test_outputs_hold_no_raw_ids_or_injected_pii(small_day):
    root, _, valid, malformed = small_day
    manifest = json.loads((SAMPLE / "pii_manifest.json").read_text())["conversations"]
    raw_accounts = set()
    for line in valid + malformed:
        try:
            raw_accounts.add(json.loads(line).get("account_id"))
        except json.JSONDecodeError:
            pass
    raw_accounts.discard(None)
    pii_values = {v["value"] for entry in manifest.values() for v in entry["pii_values"]}
    assert raw_accounts and pii_values
    # Member text: a 40-character stretch of any user turn, and any member's whole summary.
    member_text = set()
    for line in valid:
        for message in json.loads(line)["messages"]:
            content = message.get("content")
            if message.get("role") == "user" and isinstance(content, str) and len(content.strip()) >= 40:
                member_text.add(" ".join(content.split())[:40])
    member_text |= {
        s for s in pl.read_parquet(root / "state" / DAY / stages.FACETS)["summary"].to_list() if s
    }
    assert member_text
    leaks = []
    for path in (root / "out").rglob("*"):
        if not path.is_file():
            continue
        if path.suffix == ".parquet":  # compressed: compare decoded values, not bytes
            text = " ".join(str(v) for row in pl.read_parquet(path).iter_rows() for v in row)
        else:
            text = html.unescape(path.read_text(encoding="utf-8"))
        flat = " ".join(text.split())
        leaks += [(path.name, a) for a in raw_accounts if a in text]
        leaks += [(path.name, v) for v in pii_values if v in text]
        leaks += [(path.name, m[:20]) for m in member_text if m in flat]
    assert leaks == []
    redacted = pl.read_parquet(root / "state" / DAY / stages.REDACTED)
    assert not set(redacted["account"]) & raw_accounts


def test_dp_gate_and_report_state_the_whole_budget(tmp_path):
    """DP on: selection releases the large clusters, the report publishes DP counts and states epsilon and delta."""
    synthetic_state(tmp_path / "state", accounts_per_cluster=[5, 5, 1])
    resources = gate_resources(tmp_path)
    resources["privacy"] = stages.PrivacyResource(
        min_accounts=3,
        min_conversations=3,
        dp_epsilon=50.0,
        dp_selection_epsilon=6.0,
        dp_demo_budget=True,
        dp_max_clusters_per_account=1,
        dp_max_conversations_per_account=1,  # small noise: no count is clipped at 0
    )
    result = dg.materialize(
        [
            stages.released_clusters,
            stages.k_anonymity_thresholds,
            stages.cluster_tracks,
            stages.cluster_report,
        ],
        partition_key=DAY,
        resources=resources,
    )
    assert result.success
    gate = json.loads((tmp_path / "state" / DAY / stages.GATE).read_text())
    report_dir = tmp_path / "out" / "reports" / DAY
    summary = pl.read_parquet(report_dir / "run_summary.parquet")
    metrics = dict(zip(summary["metric"], summary["value"], strict=True))
    assert (
        gate["epsilon"]
        == pytest.approx(gate["selection_epsilon"] + 50.0)
        == pytest.approx(metrics["dp_epsilon"])
    )
    assert metrics["dp_delta"] == pytest.approx(gate["delta"]) and 0 < gate["delta"] <= 1e-6
    assert metrics["dp_demo_budget"] == 1 and metrics["dp_selection_threshold"] == 3
    clusters = pl.read_parquet(report_dir / "clusters.parquet")
    base = set(clusters.filter(pl.col("level") == 0)["cluster_id"])
    assert base == {0, 1}  # the one-account cluster is not selected
    assert set(clusters.filter(pl.col("level") == 1)["cluster_id"]) == {3, 4} and 6 in set(
        clusters["cluster_id"]
    )
    parent_of = dict(zip(clusters["cluster_id"], clusters["parent_id"], strict=True))
    covered = set()
    for node in base:
        while (node := parent_of.get(node)) is not None:
            covered.add(node)
    assert set(clusters.filter(pl.col("level") > 0)["cluster_id"]) <= covered, "no published parent is empty"
    top = clusters.filter(pl.col("cluster_id") == 6)["conversations"].item()
    assert (
        top == clusters.filter(pl.col("level") == 0)["conversations"].sum()
    )  # parents sum their released children
    html = (report_dir / "report.html").read_text()
    assert "Demo budget" in html and "partition selection" in html
