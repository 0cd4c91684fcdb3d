"""Which safety category: Lookout's category matcher vs the taxonomy's definitions alone, no LLM.

The facet LLM decides whether a conversation falls under any category; this
measures the part that decides which (``summarize.categories.CategoryMatcher``),
on every labelled harmful prompt in ``../shared/data`` (read-only; no text is
written out):

* ``ailuminate``: the 1,200 AILuminate demo prompts, one hazard each
  (``spc_*`` are the taxonomy's ``spc``);
* ``harmbench_strongreject``: HarmBench and StrongREJECT prompts whose category
  maps to an AILuminate code (``benchmarks.flagging``'s mappings; unmapped
  categories such as misinformation are left out);
* ``arena_hard``: general prompts, where any category is a false one (the LLM's
  gate is what keeps them out in the pipeline; this is the matcher's own abstention).

Systems: ``matcher`` (definitions plus the taxonomy's example requests, mean of
the two closest, no category below ``MIN_MATCH_SCORE``) and ``definitions`` (the
plain zero-shot baseline: nearest ``name: definition`` by the same embedder, forced
choice). Metrics: macro-F1 over the hazards present (a prompt the matcher leaves
without a category counts as a miss), accuracy, the share given no category, and
texts per second and peak RSS of each system in the same process.

Not a held-out number: the matcher's scoring rule (mean of the two closest
prototypes, against the closest one and the definition alone) and its
threshold were chosen on these sets (a seeded 240 of AILuminate disjoint from the
facet benchmark's sample, HarmBench/StrongREJECT and Arena-Hard). The example
requests were written once, before any measurement, and never edited against
them. The facet benchmark's AILuminate items were not used for any choice.

    python -m benchmarks.categories [--out benchmarks/results/categories.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "results" / "categories.json"


def load_sets() -> dict[str, list[tuple[str, str | None]]]:
    """``{set: [(prompt, code or None)]}``; ``None`` marks a general prompt."""
    from benchmarks.flagging import DATA, HARMBENCH_CODES, STRONGREJECT_CODES, _csv, _jsonl

    ail = [
        (r["prompt_text"], "spc" if r["hazard"].startswith("spc_") else r["hazard"])
        for r in _csv(DATA / "ailuminate_demo" / "airr_official_1.0_demo_en_us_prompt_set_release.csv")
    ]
    hb = DATA / "harmbench_advbench"
    mapped = [
        (r["Behavior"], HARMBENCH_CODES[r["SemanticCategory"]])
        for r in _csv(hb / "harmbench_behaviors_text_all.csv")
    ]
    mapped += [
        (r["forbidden_prompt"], STRONGREJECT_CODES[r["category"]])
        for r in _csv(hb / "strongreject_dataset.csv")
    ]
    general = []
    for name in ("arena-hard-v0.1_question.jsonl", "arena-hard-v2.0_question.jsonl"):
        general += [(r["prompt"], None) for r in _jsonl(DATA / "arena_hard_prompts" / name)]
    return {
        "ailuminate": ail,
        "harmbench_strongreject": [(t, c) for t, c in mapped if c],
        "arena_hard": general,
    }


def definitions_only(taxonomy: Any, embedder: Any) -> Any:
    """The plain baseline: the matcher over the definitions alone, nearest one, forced choice."""
    from summarize.categories import CategoryMatcher

    bare = taxonomy.model_copy(
        update={"categories": [c.model_copy(update={"examples": []}) for c in taxonomy.categories]}
    )
    return CategoryMatcher(bare, embedder, top_prototypes=1, min_score=-1.0)


def score(pairs: list[tuple[str, str | None]], predicted: list[str | None]) -> dict[str, Any]:
    """Macro-F1 over the hazards present, accuracy and the no-category share (labelled sets);
    the any-category share (general prompts)."""
    from sklearn.metrics import f1_score

    gold = [c for _, c in pairs]
    none = sum(p is None for p in predicted) / len(predicted)
    if all(c is None for c in gold):
        return {"n": len(pairs), "any_category_rate": round(1 - none, 4)}
    present = sorted({c for c in gold if c})
    shown = [p or "none" for p in predicted]
    return {
        "n": len(pairs),
        "macro_f1": round(float(f1_score(gold, shown, labels=present, average="macro", zero_division=0)), 4),
        "accuracy": round(float(np.mean([g == p for g, p in zip(gold, predicted, strict=True)])), 4),
        "no_category_rate": round(none, 4),
    }


def main(argv: list[str] | None = None) -> None:
    from clustering.embed import SentenceTransformerEmbedder
    from summarize.categories import MATCH_CHARS, CategoryMatcher
    from summarize.taxonomy import load_taxonomy

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    sets = load_sets()
    taxonomy = load_taxonomy()
    embedder = SentenceTransformerEmbedder()
    results: dict[str, dict[str, Any]] = {}
    matcher = CategoryMatcher(taxonomy, embedder)
    for name, system in (("definitions", definitions_only(taxonomy, embedder)), ("matcher", matcher)):
        row: dict[str, Any] = {}
        texts = 0
        started = time.perf_counter()
        for set_name, pairs in sets.items():
            predicted = system.best([t[:MATCH_CHARS] for t, _ in pairs])
            row[set_name] = score(pairs, predicted)
            texts += len(pairs)
        row["texts_per_s"] = round(texts / (time.perf_counter() - started), 1)
        row["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        results[name] = row
    report = {
        **results,
        "matcher_id": matcher.id,
        "notes": {
            "baseline": "definitions: nearest 'name: definition' of the taxonomy by the same MiniLM embedder, forced choice",
            "peak_rss_mb": "of the process so far (both systems share the embedder)",
            "selection": "scoring rule and threshold chosen on these sets; examples written before any measurement",
        },
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    metrics = [
        ("ailuminate", "macro_f1"),
        ("ailuminate", "accuracy"),
        ("ailuminate", "no_category_rate"),
        ("harmbench_strongreject", "macro_f1"),
        ("harmbench_strongreject", "accuracy"),
        ("harmbench_strongreject", "no_category_rate"),
        ("arena_hard", "any_category_rate"),
    ]
    print(f"category matching on {', '.join(f'{k} {len(v)}' for k, v in sets.items())} prompts")
    print(f"{'metric':<42}{'definitions':>14}{'matcher':>14}")
    print("-" * 70)
    for set_name, metric in metrics:
        print(
            f"{set_name + ' ' + metric:<42}"
            + "".join(f"{results[s][set_name].get(metric)!s:>14}" for s in results)
        )
    for metric in ("texts_per_s", "peak_rss_mb"):
        print(f"{metric:<42}" + "".join(f"{results[s][metric]!s:>14}" for s in results))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
