"""Embedder runtimes compared: plain sentence-transformers vs Lookout's onnxruntime fp32 and int8.

On the labelled mix of ``benchmarks/clustering.py`` (cached facets; the text the
pipeline embeds: summary + first user turn), each runtime embeds the same texts;
the table gives CPU milliseconds per text, the cosine to sentence-transformers'
vectors, and the base and top level ARI/NMI of the default clustering and
centroid hierarchy (no LLM names needed) as mean and sd over ``--seeds``.
Speed and memory at 1k-100k conversations are in ``benchmarks/scale.py``.

    python -m benchmarks.embedders [--n 240] [--seeds 0,...,9] [--out benchmarks/results/embedders.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "results" / "embedders.json"
RUNTIMES = (
    ("sentence-transformers", "sentence-transformers", "fp32"),
    ("onnxruntime-fp32", "onnxruntime", "fp32"),
    ("onnxruntime-int8", "onnxruntime", "int8"),
)
METRICS = ("top_ari", "top_nmi", "base_ari", "base_nmi", "noise_share")


def main(argv: list[str] | None = None) -> None:
    from benchmarks.clustering import facets_for, load_mix, lookout_structure
    from clustering.embed import build_embedder, embed_text

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=240)
    parser.add_argument("--seed", type=int, default=0, help="seed of the labelled mix")
    parser.add_argument("--seeds", default=",".join(map(str, range(10))), help="clustering seeds")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    mix = load_mix(args.n, args.seed)
    with_facets, _ = facets_for(mix, llm_threads=1)
    ok = with_facets["summary"].is_not_null().to_numpy()
    texts = embed_text(with_facets.filter(pl.Series(ok)), "summary_first_user")
    results: dict[str, dict] = {}
    reference: np.ndarray | None = None
    for name, runtime, precision in RUNTIMES:
        embedder = (
            build_embedder(runtime, precision=precision, threads=1)
            if runtime == "onnxruntime"
            else build_embedder(runtime)
        )
        embedder.encode(texts[:8])
        started = time.process_time()
        vectors = embedder.encode(texts)
        cpu_ms = (time.process_time() - started) / len(texts) * 1000
        reference = vectors if reference is None else reference
        cosine = (vectors * reference).sum(axis=1)
        runs = [lookout_structure(mix, vectors, ok, seed)[0] for seed in seeds]
        row: dict = {
            "cpu_ms_per_text": round(cpu_ms, 2),
            "cosine_min": round(float(cosine.min()), 4),
            "cosine_mean": round(float(cosine.mean()), 4),
            "texts": len(texts),
            "seeds": seeds,
        }
        for metric in METRICS:
            values = np.array([r[metric] for r in runs], dtype=float)
            row[f"{metric}_mean"], row[f"{metric}_sd"] = (
                round(float(values.mean()), 4),
                round(float(values.std()), 4),
            )
        results[name] = row
    Path(args.out).write_text(json.dumps({"baseline": "sentence-transformers", **results}, indent=2) + "\n")
    header = f"{'runtime':<23}{'CPU ms/text':>12}{'cos min':>9}" + "".join(f"{m:>17}" for m in METRICS)
    print(header)
    print("-" * len(header))
    for name, row in results.items():
        cells = "".join(f"{row[f'{m}_mean']:>9.3f} ±{row[f'{m}_sd']:.3f}" for m in METRICS)
        print(f"{name:<23}{row['cpu_ms_per_text']:>12.2f}{row['cosine_min']:>9.4f}{cells}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
