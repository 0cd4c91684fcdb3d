"""Scale benchmark: wall time, records/s and peak memory of each non-LLM stage as the input grows.

Seeded synthetic conversations (templates with injected fake PII, several
messages each, many accounts) are written as JSONL, then each
``(n, mode, stage)`` runs in its own subprocess under a time limit, so its peak
RSS is its own and a slow run is recorded as a timeout instead of hanging.
Stages: ``ingest_redact`` (the Beam job, FnApiRunner in-process and DirectRunner
multi-processing with 2 workers), ``embed`` (what the pipeline embeds by default:
a summary-like sentence plus the first user turn; the default onnxruntime
int8, its fp32 option, and plain sentence-transformers as the baseline up to
``--embed_baseline_max_n``), ``cluster``, ``gate`` (thresholds plus hierarchy
membership on synthetic nodes) and ``report`` (report tables).
The LLM stage is measured separately as tokens/s of the CPU engine on a handful
of facet requests. A ``capacity`` section turns the measurements into the
hardware a 1M-conversations-a-day deployment needs. ``--baseline_ref REF`` also
runs ``ingest_redact`` with REF's code (a temporary git worktree) on the same
input right after this code, so a slower row can be told apart as code or machine.

    python -m benchmarks.scale [--sizes 1000,10000,100000] [--modes in_process,multi_processing]
        [--embed_modes onnxruntime-int8,onnxruntime-fp32,sentence-transformers] [--embed_baseline_max_n 10000]
        [--time_limit 1200] [--skip 100000] [--llm_requests 5] [--out benchmarks/results/scale.json] [--merge]
        [--baseline_ref dd4fe3c ...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DAY = "2026-11-01"
BEAM_STAGE = "ingest_redact"
MODES = ("in_process", "multi_processing")
DEPLOYED_MODE = "multi_processing"  # what capacity sizes redaction from
# Embedder runtimes for the embed stage (the row's mode): the default, int8, and the
# plain sentence-transformers baseline.
EMBED_MODES = ("onnxruntime-int8", "onnxruntime-fp32", "sentence-transformers")
DEFAULT_EMBED_MODE = "onnxruntime-int8"
STAGES = (BEAM_STAGE, "embed", "cluster", "gate", "report")
CONVERSATIONS_PER_DAY = 1_000_000

# --- synthetic data -------------------------------------------------------------------------

FIRST = [
    "Emil",
    "Maria",
    "Kenji",
    "Aisha",
    "Lukas",
    "Sofia",
    "Omar",
    "Chloe",
    "Ravi",
    "Ingrid",
    "Tomas",
    "Leila",
]
LAST = [
    "Henriksson",
    "Garcia",
    "Tanaka",
    "Okafor",
    "Novak",
    "Rossi",
    "Haddad",
    "Martin",
    "Iyer",
    "Berg",
    "Silva",
]
DOMAINS = ["example.com", "mail.test", "corp.example.org", "inbox.example.net"]
STREETS = ["Maple Street", "Harbor Road", "King Avenue", "Elm Lane", "Station Square"]
CITIES = ["Springfield", "Riverton", "Lakeside", "Fairview", "Greenville"]
TOPICS = [
    ("python", "a script that parses CSV files and plots monthly totals"),
    ("cooking", "a vegetarian dinner for six people with a nut allergy"),
    ("travel", "a four-day itinerary through the mountains by train"),
    ("finance", "a household budget that pays off a car loan faster"),
    ("writing", "a cover letter for a junior data analyst position"),
    ("health", "a gentle stretching routine for lower back pain"),
    ("education", "an explanation of photosynthesis for a ten-year-old"),
    ("sql", "a query that finds duplicate customers by email"),
    ("gardening", "which vegetables grow well in partial shade"),
    ("legal", "what to include in a simple apartment sublease"),
    ("math", "how to solve a system of two linear equations"),
    ("marketing", "five taglines for a neighbourhood bakery"),
]
OPENERS = [
    "Hi, I'm {name} and I need help with {what}.",
    "Can you help me with {what}? You can reach me at {email}.",
    "My name is {name}, I live at {address}. I want {what}.",
    "Please draft {what}. Send questions to {email} or call {phone}.",
    "I'm working on {what} for my manager {name2}.",
]
FOLLOW_UPS = [
    "Thanks! Could you make it shorter and add an example?",
    "That helps. My colleague {name2} ({email2}) asked whether it also works for a larger group.",
    "Can you explain the second step in more detail?",
    "Great. Please also list the common mistakes to avoid.",
    "My phone is {phone}, but I'd rather keep this in the chat. What else should I consider?",
]
REPLIES = [
    "Sure. Here is a step-by-step outline for {what}, with the key points first.",
    "Of course. Start with the basics, then refine: here are three options to consider.",
    "Here is a shorter version with an example, and a note on the trade-offs.",
    "Good question. The main things to watch for are scope, timing and cost.",
]


def _fake_pii(rng: random.Random) -> dict[str, str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    first2, last2 = rng.choice(FIRST), rng.choice(LAST)
    return {
        "name": f"{first} {last}",
        "name2": f"{first2} {last2}",
        "email": f"{first.lower()}.{last.lower()}{rng.randint(1, 99)}@{rng.choice(DOMAINS)}",
        "email2": f"{first2.lower()}{rng.randint(1, 999)}@{rng.choice(DOMAINS)}",
        "phone": f"+1 555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
        "address": f"{rng.randint(1, 999)} {rng.choice(STREETS)}, {rng.choice(CITIES)}",
    }


def synthetic_record(rng: random.Random, n_accounts: int) -> dict:
    """One raw conversation record (the ingest job's JSONL format) with 2-6 messages and fake PII."""
    topic, what = rng.choice(TOPICS)
    fill = {**_fake_pii(rng), "what": what}
    messages = [{"role": "user", "content": rng.choice(OPENERS).format(**fill)}]
    for _ in range(rng.randint(0, 2)):
        messages.append({"role": "assistant", "content": rng.choice(REPLIES).format(**fill)})
        messages.append({"role": "user", "content": rng.choice(FOLLOW_UPS).format(**fill)})
    messages.append({"role": "assistant", "content": rng.choice(REPLIES).format(**fill)})
    seconds = rng.randrange(24 * 3600)
    return {
        "account_id": f"acct_{rng.randrange(n_accounts):010x}",
        "conversation_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "messages": messages,
        "timestamp": f"{DAY}T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}Z",
    }


def write_conversations(folder: Path, n: int, seed: int = 0) -> Path:
    """Write ``n`` seeded synthetic records (about n/3 accounts) to ``folder/conversations.jsonl``, streamed."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    n_accounts = max(1, n // 3)
    path = folder / "conversations.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for _ in range(n):
            f.write(json.dumps(synthetic_record(rng, n_accounts)) + "\n")
    return path


def facet_texts(n: int, seed: int = 0) -> list[str]:
    """Facet-like summaries (what the embed stage sees after the LLM), seeded."""
    rng = random.Random(seed)
    verbs = ["asked for help with", "wanted", "requested", "sought advice on", "needed"]
    extras = [
        "",
        " and follow-up examples",
        " in plain language",
        " with a short checklist",
        " for a beginner",
    ]
    return [f"The user {rng.choice(verbs)} {rng.choice(TOPICS)[1]}{rng.choice(extras)}." for _ in range(n)]


def synthetic_hierarchy(n: int, seed: int = 0):
    """``(assignments, nodes)``: n conversations over ~n/50 base clusters, ~8% noise, mid and top levels."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    n_base = max(2, n // 50)
    n_mid = max(1, n_base // 8)
    n_top = max(1, n_mid // 4)
    # Zipf-like cluster sizes: a few big clusters and a long tail that the thresholds withhold.
    weights = 1.0 / np.arange(1, n_base + 1) ** 1.5
    labels = rng.choice(n_base, size=n, p=weights / weights.sum())
    labels[rng.random(n) < 0.08] = -1
    assignments = pl.DataFrame(
        {
            "conversation_id": [f"c{i}" for i in range(n)],
            "account": [f"p{x}" for x in rng.integers(0, max(1, n // 3), size=n)],
            "cluster_id": labels.astype(np.int64),
        }
    )
    base_ids = np.arange(n_base)
    mid_ids = n_base + np.arange(n_mid)
    top_ids = n_base + n_mid + np.arange(n_top)
    nodes = pl.DataFrame(
        {
            "cluster_id": np.concatenate([base_ids, mid_ids, top_ids]).astype(np.int64),
            "level": [0] * n_base + [1] * n_mid + [2] * n_top,
            "parent_id": [int(mid_ids[i % n_mid]) for i in range(n_base)]
            + [int(top_ids[i % n_top]) for i in range(n_mid)]
            + [None] * n_top,
            "title": [f"Cluster {i}" for i in range(n_base + n_mid + n_top)],
            "description": ["Synthetic cluster for the scale benchmark."] * (n_base + n_mid + n_top),
        },
        schema_overrides={"parent_id": pl.Int64},
    )
    return assignments, nodes


# --- stages (each runs in a fresh subprocess) -------------------------------------------------


def stage_ingest_redact(n: int, mode: str, work: Path) -> dict:
    import pyarrow.parquet as pq

    from pipelines import ingest_redact

    key_file = work / "pseudonym.key"
    key_file.write_text("scale-benchmark-key-" + "k" * 32, encoding="utf-8")
    out, dead = work / f"redacted_{mode}.parquet", work / f"dead_{mode}.parquet"
    options = (
        ["--runner=FnApiRunner"]
        if mode == "in_process"
        else ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    )
    started = time.perf_counter()
    ingest_redact.run(
        [
            f"--input={work / 'input'}",
            f"--day={DAY}",
            f"--output={out}",
            f"--dead_letter={dead}",
            f"--pseudonym_key_file={key_file}",
            *options,
        ]
    )
    seconds = time.perf_counter() - started
    redacted, dead_rows = pq.read_metadata(out).num_rows, pq.read_metadata(dead).num_rows
    return {
        "seconds": seconds,
        "records": redacted + dead_rows,
        "redacted": redacted,
        "dead_lettered": dead_rows,
    }


def embed_texts(work: Path, n: int) -> list[str]:
    """What the pipeline embeds by default: a summary followed by the first user turn, cut as the pipeline cuts it."""
    import polars as pl

    from clustering.embed import embed_text

    with (work / "input" / "conversations.jsonl").open(encoding="utf-8") as f:
        first = [json.loads(line)["messages"][0]["content"] for line in f]
    return embed_text(pl.DataFrame({"summary": facet_texts(n), "first_user": first}), "summary_first_user")


def stage_embed(n: int, mode: str, work: Path) -> dict:
    import numpy as np

    from clustering.embed import build_embedder

    texts = embed_texts(work, n)
    loaded = time.perf_counter()
    runtime, _, precision = mode.partition("-")
    embedder = (
        build_embedder(runtime, precision=precision or "fp32")
        if runtime == "onnxruntime"
        else build_embedder(mode)
    )
    embedder.encode(texts[:8])
    started = time.perf_counter()
    vectors = embedder.encode(texts)
    seconds = time.perf_counter() - started
    if mode == DEFAULT_EMBED_MODE:
        np.save(work / "vectors.npy", vectors)
    return {
        "seconds": seconds,
        "records": len(vectors),
        "model_load_s": started - loaded,
        "dim": int(vectors.shape[1]),
        "mean_chars": round(sum(map(len, texts)) / max(1, len(texts)), 1),
    }


def stage_cluster(n: int, mode: str, work: Path) -> dict:
    import numpy as np

    from clustering.cluster import ClusterParams, cluster_embeddings

    vectors = np.load(work / "vectors.npy")
    started = time.perf_counter()
    result = cluster_embeddings(vectors, ClusterParams())
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "records": len(vectors),
        "clusters": result.n_clusters,
        "noise": result.n_noise,
    }


def _gate(assignments, nodes):
    from clustering.hierarchy import membership
    from privacy.gate import Thresholds, apply_thresholds

    members = membership(assignments, nodes)
    released, withheld = apply_thresholds(nodes, members, Thresholds())
    return members, released, withheld


def stage_gate(n: int, mode: str, work: Path) -> dict:
    assignments, nodes = synthetic_hierarchy(n)
    started = time.perf_counter()
    members, released, withheld = _gate(assignments, nodes)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "records": n,
        "nodes": len(nodes),
        "memberships": len(members),
        "released": len(released),
        "withheld": len(withheld),
    }


def stage_report(n: int, mode: str, work: Path) -> dict:
    import polars as pl

    from reporting.tables import build_report_tables
    from summarize.taxonomy import load_taxonomy

    codes = list(load_taxonomy().codes)
    assignments, nodes = synthetic_hierarchy(n)
    members, released, withheld = _gate(assignments, nodes)
    # Aggregates the earlier stages attach to each node: counts and per-category conversations.
    counts = members.group_by("cluster_id").agg(
        pl.len().cast(pl.Int64).alias("conversations"),
        pl.col("account").n_unique().cast(pl.Int64).alias("unique_accounts"),
    )
    released = (
        released.join(counts, on="cluster_id", how="left")
        .with_columns(
            pl.lit(DAY).alias("day"), pl.lit("llm").alias("name_source"), pl.lit(2.0).alias("mean_concern")
        )
        .with_columns(
            [
                (pl.col("conversations") * ((i + pl.col("cluster_id")) % 3 == 0)).alias(f"cat_{c}")
                for i, c in enumerate(codes)
            ]
        )
    )
    withheld = withheld.join(nodes.select("cluster_id", "level"), on="cluster_id").with_columns(
        pl.lit("threshold").alias("layer")
    )
    dead = pl.DataFrame({"stage": ["ingest"], "reason": ["invalid json"], "records": [max(1, n // 1000)]})
    entities = pl.DataFrame(
        {"entity_type": ["EMAIL_ADDRESS", "PERSON", "PHONE_NUMBER"], "count": [n, 2 * n, n // 2]}
    )
    summary = {
        "records_read": n,
        "clusters_released": len(released),
        "clusters_withheld": len(withheld),
        "dp_epsilon": None,
    }
    started = time.perf_counter()
    tables = build_report_tables(DAY, released, None, codes, summary, dead, entities, withheld)
    tables.write(work / "reports")
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "records": n,
        "report_clusters": len(tables.clusters),
        "category_rows": len(tables.categories),
    }


STAGE_FNS = {
    BEAM_STAGE: stage_ingest_redact,
    "embed": stage_embed,
    "cluster": stage_cluster,
    "gate": stage_gate,
    "report": stage_report,
}


def llm_tokens_per_s(requests: int, work: Path) -> dict:
    """Tokens/s of the embedded CPU engine (llama.cpp, 1 thread) on facet requests from synthetic conversations."""
    from summarize.embedded import EmbeddedLLM
    from summarize.extract import FacetExtractor, FacetFailure
    from summarize.taxonomy import load_taxonomy

    rng = random.Random(7)
    conversations = []
    for i in range(requests):
        record = synthetic_record(rng, 10)
        conversations.append(
            {
                "conversation_id": record["conversation_id"],
                "account": f"p{i}",
                "timestamp": record["timestamp"],
                "messages": record["messages"],
            }
        )
    llm = EmbeddedLLM(n_threads=1)
    llama = llm._llama  # the same weights' tokenizer counts generated and prompt tokens

    def count(text: str) -> int:
        return len(llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    class Counting:
        """Passes requests to the engine, counting prompt and completion tokens (a max_tokens hit counts the cap)."""

        def __init__(self) -> None:
            self.model_id, self.prompt, self.completion, self.calls = llm.model_id, 0, 0, 0

        def generate_json_many(self, reqs):
            answers = llm.generate_json_many(reqs)
            for req, answer in zip(reqs, answers, strict=True):
                self.calls += 1
                self.prompt += sum(count(m["content"]) for m in req.messages)
                self.completion += req.max_tokens if not isinstance(answer, str) else count(answer)
            return answers

    counter = Counting()
    extractor = FacetExtractor(counter, load_taxonomy())  # type: ignore[arg-type]
    started = time.perf_counter()
    rows = extractor.extract_many(conversations)
    seconds = time.perf_counter() - started
    return {
        "engine": "embedded llama.cpp (summarize.embedded.EmbeddedLLM, n_threads=1)",
        "model_id": llm.model_id,
        "conversations": requests,
        "llm_calls": counter.calls,
        "failures": sum(isinstance(r, FacetFailure) for r in rows),
        "prompt_tokens": counter.prompt,
        "completion_tokens": counter.completion,
        "seconds": round(seconds, 2),
        "completion_tokens_per_s": round(counter.completion / seconds, 2),
        "seconds_per_conversation": round(seconds / requests, 2),
        "note": "prompt tokens count message contents only (chat-template tokens excluded)",
    }


def _child_main(argv: list[str]) -> None:
    stage, n, mode, work, result_path = argv[0], int(argv[1]), argv[2], Path(argv[3]), Path(argv[4])

    def cpu_seconds() -> float:
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    cpu_before = cpu_seconds()
    result = llm_tokens_per_s(n, work) if stage == "llm" else STAGE_FNS[stage](n, mode, work)
    # CPU time of the stage call (imports and model loading included), this process and its workers.
    result["cpu_s"] = cpu_seconds() - cpu_before
    result["self_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # Beam's multi-processing workers are this process's children.
    result["workers_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result_path.write_text(json.dumps(result))


def run_child(stage: str, n: int, mode: str, work: Path, time_limit: float, repo: Path = REPO) -> dict:
    """Run one stage in a fresh interpreter under ``time_limit``; ``{"status": "timeout"}`` when it runs over.

    ``repo`` is the checkout whose code runs (a baseline ref's worktree, or this one).
    """
    result_path = work / f"result_{stage}_{mode}_{repo.name}.json"
    result_path.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.scale",
        "--_child",
        stage,
        str(n),
        mode,
        str(work),
        str(result_path),
    ]
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(repo)}  # Beam's worker processes import the same code
    proc = subprocess.Popen(
        cmd, cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        _, err = proc.communicate(timeout=time_limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # the stage and its Beam workers
        proc.communicate()
        return {"status": "timeout", "seconds": round(time.perf_counter() - started, 1)}
    if proc.returncode or not result_path.exists():
        tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] if err else []
        return {"status": "error", "error": f"exit {proc.returncode}: {' '.join(tail)[:300]}"}
    return {"status": "ok", **json.loads(result_path.read_text())}


# --- capacity arithmetic ---------------------------------------------------------------------

# Stated assumptions (not measured here): a vLLM server on one H100 80GB serving a
# 7B-class instruct model with continuous batching.
VLLM_ASSUMED = {
    "gpu": "1x H100 80GB",
    "model": "7B-class instruct model (bf16), vLLM continuous batching",
    "completion_tokens_per_s": 2500,
    "prompt_tokens_per_s": 20000,
    "source": "assumption for sizing, not measured in this run",
}
BATCH_WINDOW_H = 8  # the day's run must finish within this many hours
HEADROOM = 1.5  # retries, backfills and skew


def capacity(runs: list[dict], llm: dict | None) -> dict:
    """Hardware for CONVERSATIONS_PER_DAY from the measured rates and the stated vLLM assumption."""
    # A baseline ref's rows (``mode@commit``) are for comparison, not for sizing.
    ok = [r for r in runs if r.get("status") == "ok" and base_mode(r["mode"]) == r["mode"]]
    window = BATCH_WINDOW_H * 3600
    out: dict = {
        "conversations_per_day": CONVERSATIONS_PER_DAY,
        "batch_window_h": BATCH_WINDOW_H,
        "headroom": HEADROOM,
        "lines": [],
    }
    lines = out["lines"]

    def largest(stage: str, mode: str) -> dict | None:
        rows = [r for r in ok if r["stage"] == stage and r["mode"] == mode]
        return max(rows, key=lambda r: r["n"]) if rows else None

    # Records per CPU-second is records/s per fully used core, whatever else shared the machine.
    # Sized from the deployed shape, Beam workers in processes (their runner's CPU counted);
    # the in-process run only where no multi-processing row exists.
    row = largest(BEAM_STAGE, DEPLOYED_MODE) or largest(BEAM_STAGE, "in_process")
    if row and row.get("cpu_s"):
        rate, mode, n, commit = row["records"] / row["cpu_s"], row["mode"], row["n"], row.get("commit")
        core_s = CONVERSATIONS_PER_DAY / rate
        cores = math.ceil(core_s / window * HEADROOM)
        out["redaction"] = {
            "records_per_cpu_s": round(rate, 2),
            # A run merged from an earlier commit (--merge) says which.
            "from": f"{mode} at n={n}" + (f" (commit {commit})" if commit else ""),
            "core_hours_per_day": round(core_s / 3600, 1),
            "cores": cores,
        }
        lines.append(
            f"redaction: {CONVERSATIONS_PER_DAY:,} / {rate:.2f} rec per CPU-s = {core_s / 3600:,.1f} core-h/day; "
            f"/ {BATCH_WINDOW_H} h x {HEADROOM} headroom = {cores} cores"
        )
    embed = largest("embed", DEFAULT_EMBED_MODE)
    if embed and embed.get("cpu_s"):
        rate = embed["records"] / embed["cpu_s"]
        core_s = CONVERSATIONS_PER_DAY / rate
        cores = math.ceil(core_s / window * HEADROOM)
        out["embed"] = {
            "records_per_cpu_s": round(rate, 2),
            "core_hours_per_day": round(core_s / 3600, 1),
            "cores": cores,
        }
        lines.append(
            f"embed (CPU): {CONVERSATIONS_PER_DAY:,} / {rate:.1f} rec per CPU-s = "
            f"{core_s / 3600:,.1f} core-h/day; / {BATCH_WINDOW_H} h x {HEADROOM} = {cores} cores (or a share of the LLM GPUs)"
        )
    if llm and llm.get("conversations"):
        calls_per_conv = llm["llm_calls"] / llm["conversations"]
        comp = llm["completion_tokens"] / llm["conversations"]
        prompt = llm["prompt_tokens"] / llm["conversations"]
        gpu_s = CONVERSATIONS_PER_DAY * (
            comp / VLLM_ASSUMED["completion_tokens_per_s"] + prompt / VLLM_ASSUMED["prompt_tokens_per_s"]
        )
        gpus = math.ceil(gpu_s / window * HEADROOM)
        cpu_core_s = CONVERSATIONS_PER_DAY * llm["seconds_per_conversation"]  # measured with 1 thread
        out["llm"] = {
            "vllm_assumed": VLLM_ASSUMED,
            "calls_per_conversation": round(calls_per_conv, 2),
            "completion_tokens_per_conversation": round(comp, 1),
            "prompt_tokens_per_conversation": round(prompt, 1),
            "gpu_hours_per_day": round(gpu_s / 3600, 1),
            "gpus": gpus,
            "cpu_engine_core_hours_per_day": round(cpu_core_s / 3600, 0),
            "cpu_engine_cores": math.ceil(cpu_core_s / window * HEADROOM),
        }
        lines.append(
            f"LLM facets (vLLM, ASSUMED {VLLM_ASSUMED['completion_tokens_per_s']} out tok/s and "
            f"{VLLM_ASSUMED['prompt_tokens_per_s']} prompt tok/s per H100): {CONVERSATIONS_PER_DAY:,} x "
            f"({comp:.0f}/{VLLM_ASSUMED['completion_tokens_per_s']} + {prompt:.0f}/{VLLM_ASSUMED['prompt_tokens_per_s']}) s "
            f"= {gpu_s / 3600:,.1f} GPU-h/day; / {BATCH_WINDOW_H} h x {HEADROOM} = {gpus} GPUs"
        )
        lines.append(
            f"LLM on the CPU engine instead: {CONVERSATIONS_PER_DAY:,} x {llm['seconds_per_conversation']} s "
            f"(1 thread) = {cpu_core_s / 3600:,.0f} core-h/day = {out['llm']['cpu_engine_cores']} cores: not viable"
        )
    rss = [r for r in ok if r["stage"] != "llm"]
    if rss:
        worst = max(rss, key=lambda r: r["peak_rss_mb"])
        # One redaction worker: the in-process job's own peak, or a multi-processing worker's.
        beam = [r for r in rss if r["stage"] == BEAM_STAGE]
        worker = (
            max(
                r["workers_peak_rss_mb"] if r["mode"] == "multi_processing" else r["self_peak_rss_mb"]
                for r in beam
            )
            if beam
            else 0.0
        )
        dim = next((r["dim"] for r in ok if r["stage"] == "embed" and "dim" in r), 384)
        vectors_gb = CONVERSATIONS_PER_DAY * dim * 4 / 1e9
        out["memory"] = {
            "largest_stage_peak_rss_mb": worst["peak_rss_mb"],
            "largest_stage": f"{worst['stage']} n={worst['n']}",
            "beam_worker_peak_rss_mb": round(worker, 1),
            "embeddings_gb_per_day": round(vectors_gb, 2),
            "ram_per_redaction_core_gb": round(worker / 1024 * HEADROOM, 1),
        }
        lines.append(
            f"memory: each redaction worker peaks at ~{worker:.0f} MB -> plan "
            f"{out['memory']['ram_per_redaction_core_gb']} GB RAM per redaction core; the day's embeddings are "
            f"{CONVERSATIONS_PER_DAY:,} x {dim} x 4 B = {vectors_gb:.2f} GB; clustering fits on a 20k subsample "
            f"(ClusterParams.max_fit_points), so one 16 GB node holds embed+cluster+gate+report"
        )
    return out


# --- driver ----------------------------------------------------------------------------------


def _commit(ref: str = "HEAD") -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", ref], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def ref_mode(mode: str, commit: str) -> str:
    """The mode name of a baseline ref's row: ``multi_processing@dd4fe3c``."""
    return f"{mode}@{commit}"


def base_mode(mode: str) -> str:
    """The mode a row ran in, without its baseline ref."""
    return mode.partition("@")[0]


@contextlib.contextmanager
def ref_checkout(ref: str):
    """A temporary detached git worktree of ``ref`` (its code runs the baseline rows)."""
    with tempfile.TemporaryDirectory(prefix="scale_ref_") as tmp:
        path = Path(tmp) / "repo"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "--quiet", str(path), ref], cwd=REPO, check=True
        )
        try:
            yield path
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=REPO, check=False)


def compare_to_current(row: dict, current: dict) -> None:
    """Add the ref row's CPU time relative to the current code's row on the same input."""
    if row.get("status") == "ok" and current.get("status") == "ok" and current.get("cpu_s"):
        row["cpu_s_vs_current"] = round(row["cpu_s"] / current["cpu_s"], 3)


def _row(n: int, mode: str, stage: str, result: dict, commit: str | None = None) -> dict:
    row = {"n": n, "mode": mode, "stage": stage, "status": result["status"], "commit": commit or _commit()}
    if result["status"] == "ok":
        seconds = result.pop("seconds")
        records = result.pop("records")
        peak = result["self_peak_rss_mb"] + (
            result["workers_peak_rss_mb"] if base_mode(mode) == "multi_processing" else 0.0
        )
        row.update(
            seconds=round(seconds, 2),
            records=records,
            records_per_s=round(records / seconds, 2) if seconds else None,
            peak_rss_mb=round(peak, 1),
            **{k: round(v, 2) if isinstance(v, float) else v for k, v in result.items() if k != "status"},
        )
    else:
        row.update(
            seconds=result.get("seconds"), records_per_s=None, peak_rss_mb=None, error=result.get("error")
        )
    return row


def _save(path: Path, report: dict) -> None:
    """Write the report so far, with the capacity arithmetic from what has been measured."""
    llm = report["llm"] if report["llm"] and "completion_tokens" in report["llm"] else None
    order = (*MODES, *EMBED_MODES)
    report["runs"].sort(
        key=lambda r: (
            r["n"],
            STAGES.index(r["stage"]),
            order.index(base_mode(r["mode"])) if base_mode(r["mode"]) in order else -1,
            r["mode"],
        )
    )
    report["capacity"] = capacity(report["runs"], llm)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")


def stage_modes_for(
    stage: str, n: int, modes: list[str], embed_modes: list[str], args, skipped: bool = False
) -> list[str]:
    """The modes one stage runs in at size ``n``."""
    if stage == BEAM_STAGE:
        limited = args.beam_only_in_process_above and n > args.beam_only_in_process_above
        return ["in_process"] if limited and not skipped else modes
    if stage == "embed":
        # The default runtime first: it writes the vectors the cluster stage reads.
        ordered = sorted(embed_modes, key=lambda m: m != DEFAULT_EMBED_MODE)
        return ordered if n <= args.embed_baseline_max_n else [m for m in ordered if m == DEFAULT_EMBED_MODE]
    return ["in_process"]


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--_child"]:
        _child_main(argv[1:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated conversation counts")
    parser.add_argument("--modes", default=",".join(MODES), help="Beam modes for ingest_redact")
    parser.add_argument(
        "--beam_only_in_process_above",
        type=int,
        default=0,
        help="above this n, run ingest_redact in-process only (0: no limit)",
    )
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument(
        "--embed_modes", default=",".join(EMBED_MODES), help="embedder runtimes for the embed stage"
    )
    parser.add_argument(
        "--embed_baseline_max_n",
        type=int,
        default=10_000,
        help="above this n, the embed stage runs the default runtime only",
    )
    parser.add_argument("--skip", default="", help="sizes recorded as skipped (not run), comma-separated")
    parser.add_argument("--skip_reason", default="not run in this session (time budget)")
    parser.add_argument("--time_limit", type=float, default=1800, help="seconds per (n, mode, stage) run")
    parser.add_argument("--llm_requests", type=int, default=5, help="facet requests for tokens/s (0: skip)")
    parser.add_argument(
        "--baseline_ref",
        action="append",
        default=[],
        help="git ref whose ingest_redact also runs, on the same input right after this code's run "
        "(same machine, same run: tells a code change from a machine change); repeatable",
    )
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "scale.json"))
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the rows of --out for (n, mode, stage) not run now (runs made in parts)",
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    skip = {int(s) for s in args.skip.split(",") if s}
    modes = [m for m in args.modes.split(",") if m]
    stages = [s for s in args.stages.split(",") if s]
    embed_modes = [m for m in args.embed_modes.split(",") if m]
    out = Path(args.out)
    refs = {ref: _commit(ref) for ref in args.baseline_ref}
    if "unknown" in refs.values():
        parser.error(f"unknown git ref in --baseline_ref: {args.baseline_ref}")
    report: dict = {
        "commit": _commit(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "time_limit_s": args.time_limit,
        "runs": [],
        "llm": None,
        "capacity": None,
    }
    kept: list[dict] = []
    if args.merge and out.exists():
        earlier = json.loads(out.read_text())
        now = {
            (n, m, st)
            for n in sizes
            for st in stages
            for mode in stage_modes_for(st, n, modes, embed_modes, args)
            for m in [mode, *(ref_mode(mode, c) for c in refs.values() if st == BEAM_STAGE)]
        }
        kept = [r for r in earlier["runs"] if (r["n"], r["mode"], r["stage"]) not in now]
        report["runs"] = kept
        report["llm"] = earlier.get("llm") if not args.llm_requests else None
        report["merged_from_commit"] = earlier.get("commit")
    if args.llm_requests:
        with tempfile.TemporaryDirectory(prefix="scale_llm_") as tmp:
            result = run_child("llm", args.llm_requests, "cpu", Path(tmp), args.time_limit)
        report["llm"] = (
            result if result["status"] != "ok" else {k: v for k, v in result.items() if k != "status"}
        )
        print(f"  llm: {report['llm']}", flush=True)
        _save(out, report)
    # One temporary worktree per baseline ref for the whole run.
    with contextlib.ExitStack() as stack:
        checkouts = {ref: stack.enter_context(ref_checkout(ref)) for ref in refs}
        for n in sizes:
            with tempfile.TemporaryDirectory(prefix=f"scale{n}_") as tmp:
                work = Path(tmp)
                if n not in skip:
                    write_conversations(work / "input", n)
                for stage in stages:
                    for mode in stage_modes_for(stage, n, modes, embed_modes, args, skipped=n in skip):
                        if n in skip:
                            row = {
                                "n": n,
                                "mode": mode,
                                "stage": stage,
                                "status": "skipped",
                                "seconds": None,
                                "records_per_s": None,
                                "peak_rss_mb": None,
                                "reason": args.skip_reason,
                            }
                        else:
                            row = _row(n, mode, stage, run_child(stage, n, mode, work, args.time_limit))
                        report["runs"].append(row)
                        print(f"  {row}", flush=True)
                        _save(out, report)
                        if stage != BEAM_STAGE or n in skip:
                            continue
                        for ref, commit in refs.items():
                            result = run_child(stage, n, mode, work, args.time_limit, repo=checkouts[ref])
                            ref_row = _row(n, ref_mode(mode, commit), stage, result, commit=commit)
                            compare_to_current(ref_row, row)
                            report["runs"].append(ref_row)
                            print(f"  {ref_row}", flush=True)
                            _save(out, report)
    _save(out, report)
    print_table(report)
    print(f"wrote {out}")


def print_table(report: dict) -> None:
    """The one table: every run, then the LLM rate and the capacity arithmetic as footer lines."""
    header = f"{'n':>8} {'mode':<26}{'stage':<14}{'status':<9}{'seconds':>9}{'records/s':>11}{'peak RSS MB':>13}{'CPU s':>9}"
    print(header)
    print("-" * len(header))
    for r in report["runs"]:
        fmt = lambda v, p: "-" if v is None else f"{v:.{p}f}"  # noqa: E731
        print(
            f"{r['n']:>8} {r['mode']:<26}{r['stage']:<14}{r['status']:<9}{fmt(r['seconds'], 1):>9}"
            f"{fmt(r['records_per_s'], 1):>11}{fmt(r['peak_rss_mb'], 0):>13}{fmt(r.get('cpu_s'), 1):>9}"
        )
    llm = report.get("llm")
    if llm and "completion_tokens_per_s" in llm:
        print(
            f"LLM (CPU, 1 thread): {llm['completion_tokens_per_s']} completion tok/s, "
            f"{llm['seconds_per_conversation']} s/conversation over {llm['conversations']} facet requests"
        )
    for line in (report.get("capacity") or {}).get("lines", []):
        print(f"capacity: {line}")


if __name__ == "__main__":
    main()
