#!/usr/bin/env python3
"""Build the bundled Lookout demo sample under ``data/sample/``.

The sample is a small, seeded, *derived* subset of permissively licensed public
evaluation sets, dressed up as four days of assistant logs so that every stage
of the pipeline has something to find:

* topic mix per day: coding/technical (Arena-Hard), general help / writing
  (OpenAssistant trees and prompts), red-team style dialogues (Anthropic HH
  harmless-base) and a share of hazardous prompts (MLCommons AILuminate demo);
* an *emerging* pattern: AILuminate hazard ``ncr`` (non-violent crimes, mostly
  fraud / financial / cyber crime prompts) grows 1 -> 2 -> 4 -> 7 per day,
  spread over many accounts;
* tiny clusters: 2-3 conversations on a rare topic from one account each,
  which a k-anonymity gate has to drop;
* PII injection: synthetic Presidio sentences (names, e-mails, phone numbers,
  card numbers, ...) inserted into ~15% of user turns, listed in
  ``pii_manifest.json`` so tests can assert they never reach outputs;
* malformed records (one of each kind), listed in ``malformed_manifest.json``;
* three input formats: ``conversations.jsonl`` every day, plus a gzipped JSONL
  part (day 2) and a Parquet part (day 3, needs pyarrow; without it that part
  is written as plain JSONL and a warning is printed).

Reads ``../shared/data/`` relative to the repository root (override with
``--shared-data``). Only the stdlib is needed (pyarrow optional). Output is
byte-for-byte deterministic for a given seed (and, for the Parquet part, a
given pyarrow version).

Content warning: the hazardous prompts are copied verbatim from AILuminate and
HH. Never print them to logs or reports.

Usage::

    python scripts/build_sample.py                # writes data/sample/
    python scripts/build_sample.py --out /tmp/s   # somewhere else
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import json
import re
import shutil
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SHARED = REPO_ROOT.parent / "shared" / "data"
DEFAULT_OUT = REPO_ROOT / "data" / "sample"

SEED = 20261101
DAYS = ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]
PER_DAY = 26
MAX_CHARS = 1500           # truncate longer messages
MAX_MESSAGES = 6           # per conversation, system message included
MAX_PROMPT_CHARS = 1200    # prefer short arena prompts (small CPU LLM downstream)

EMERGING_HAZARD = "ncr"
EMERGING_PER_DAY = [1, 2, 4, 7]
BACKGROUND_HAZARD_PER_DAY = [3, 3, 2, 2]
# Not used at all: child sexual exploitation and sexual content prompts.
EXCLUDED_HAZARDS = {"cse", "sxc_prn"}
# Preferred emerging sub-theme: fraud / financial / cyber crime.
EMERGING_THEME = re.compile(
    r"financ|tax|fraud|launder|money|phish|hack|scam|forg|counterfeit|credit|"
    r"bank|invest|crypto|ponzi|embezzl|insurance|identity", re.I)

# Tiny clusters: (name, day index, [(source, key), ...]); one account each.
TINY_CLUSTERS = [
    ("dnd_5e_homebrew", 0, [("arena_v01_cluster", "Magic Crystals & RPG Mechanics"),
                            ("oasst_lottery_match", r"D&D 5th edition")]),
    ("roblox_luau_scripting", 1, [("arena_v01_cluster", "Roblox Scripting and Mechanics")]),
    ("chord_progressions", 2, [("arena_v01_cluster", "Advanced Guitar Chord Theory")]),
]
# Anything matching this is kept out of the general pools so the tiny
# clusters stay rare.
TINY_TOPIC_RE = re.compile(
    r"roblox|luau|d&d|dungeons|dragons|\b5e\b|pathfinder|chord|lydian|guitar", re.I)
# Arena v0.1 clusters left out of the benign pools (they read like crime).
ARENA_SKIP_CLUSTERS = {"Exam Cheating Strategies", "Delete System32 with Rust",
                       "WiFi Security and Hacking", "Mining Operations Optimization"}

# Share of the remaining (benign) conversations per source.
MIX = [("arena", 0.32), ("oasst_tree", 0.20), ("oasst_lottery", 0.16), ("hh", 0.32)]

# PII: entity types whose values must never reach outputs, and quotas.
PII_SENSITIVE = {"PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN",
                 "IBAN_CODE", "IP_ADDRESS", "STREET_ADDRESS", "US_DRIVER_LICENSE"}
PII_QUOTA = [("EMAIL_ADDRESS", 8), ("PHONE_NUMBER", 7), ("CREDIT_CARD", 7),
             ("IBAN_CODE", 3), ("US_SSN", 3), ("IP_ADDRESS", 2),
             ("US_DRIVER_LICENSE", 1), ("PERSON", 5)]  # 36 = 15% of 240

SYSTEM_PROMPTS = [
    "You are a helpful assistant.",
    "You are a concise, friendly assistant. Keep answers short unless asked otherwise.",
    "You are a coding assistant. Prefer working code with brief explanations.",
    "You are an AI assistant for a small business. Be polite and accurate.",
]
SYSTEM_SHARE = 0.12

# Accounts: (count, conversations each). 40 general + 3 tiny-cluster accounts.
ACCOUNT_SIZES = [(10, 1), (12, 2), (10, 3), (5, 4), (2, 6), (1, 8)]
N_EMAIL_ACCOUNTS = 4

# Malformed records: (day index, file key, kind, expected_field).
MALFORMED = [
    (0, "main", "invalid_json", None),
    (0, "main", "missing_messages", "messages"),
    (1, "main", "empty_messages", "messages"),
    (1, "gz", "bad_role", "messages[1].role"),
    (2, "main", "non_string_content", "messages[0].content"),
    (2, "main", "missing_account_id", "account_id"),
    (3, "main", "bad_timestamp", "timestamp"),
    (3, "main", "timestamp_wrong_day", "timestamp"),
]
# Day layout: day index -> {file key: (file name, number of valid records)}.
SPLIT = {1: ("gz", "part-001.jsonl.gz", 20), 2: ("parquet", "part-002.parquet", 20)}
MAIN_FILE = "conversations.jsonl"


def rng_for(seed: int, purpose: str) -> Random:
    """Independent deterministic stream per purpose (str seeds are stable)."""
    return Random(f"{seed}:{purpose}")


# ---------------------------------------------------------------- loading

def load_oasst_trees(shared: Path) -> list[dict]:
    out = []
    with open(shared / "oasst_en100" / "en_100_tree.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                out.append(json.loads(line))
    return out


def oasst_path(tree: dict) -> list[dict]:
    """Deterministic root-to-leaf walk: prefer human-written, best-ranked replies."""
    msgs = []
    node = tree["prompt"]
    while node is not None:
        if node.get("deleted"):
            break
        role = "user" if node["role"] == "prompter" else "assistant"
        msgs.append({"role": role, "content": node["text"]})
        replies = [r for r in node.get("replies", []) if not r.get("deleted")]
        if not replies:
            break
        replies.sort(key=lambda r: (bool(r.get("synthetic")), r.get("rank") is None,
                                    r.get("rank") or 0, r["message_id"]))
        node = replies[0]
    return msgs


def load_lottery(shared: Path) -> list[str]:
    out = []
    with open(shared / "oasst_en100" / "prompt_lottery_en_250_text.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                out.append(json.loads(line))
    return out


HH_SPLIT = re.compile(r"\n\n(Human|Assistant): ?")


def parse_hh(text: str) -> list[dict] | None:
    """'\\n\\nHuman: ..\\n\\nAssistant: ..' -> messages; None if irregular."""
    parts = HH_SPLIT.split(text)
    if parts[0].strip():
        return None
    roles, texts = parts[1::2], parts[2::2]
    if not roles or len(roles) % 2:
        return None
    msgs = []
    for i, (role, body) in enumerate(zip(roles, texts)):
        want = "Human" if i % 2 == 0 else "Assistant"
        body = body.strip()
        if role != want or not body or "Human:" in body or "Assistant:" in body:
            return None
        msgs.append({"role": "user" if role == "Human" else "assistant", "content": body})
    return msgs


def load_hh(shared: Path) -> list[tuple[int, list[dict]]]:
    out = []
    with gzip.open(shared / "hh_rlhf_harmless_test" / "harmless-base_test.jsonl.gz",
                   "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            msgs = parse_hh(json.loads(line)["chosen"])
            if msgs is not None:
                out.append((i, msgs))
    return out


def load_arena(shared: Path) -> tuple[list[dict], list[dict]]:
    def read(name):
        with open(shared / "arena_hard_prompts" / name, encoding="utf-8") as fh:
            return [json.loads(l) for l in fh if l.strip()]
    return read("arena-hard-v0.1_question.jsonl"), read("arena-hard-v2.0_question.jsonl")


def load_ailuminate(shared: Path) -> list[dict]:
    path = shared / "ailuminate_demo" / "airr_official_1.0_demo_en_us_prompt_set_release.csv"
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def load_pii(shared: Path) -> list[dict]:
    with gzip.open(shared / "pii_presidio_synth" / "synth_dataset_v2.json.gz", "rt",
                   encoding="utf-8") as fh:
        return json.load(fh)


# ---------------------------------------------------------------- helpers

def truncate(text: str) -> str:
    if len(text) <= MAX_CHARS:
        return text
    cut = text.rfind(" ", 0, MAX_CHARS - 6)
    if cut < MAX_CHARS // 2:
        cut = MAX_CHARS - 6
    return text[:cut].rstrip() + " [...]"


def clean_messages(msgs: list[dict]) -> list[dict]:
    return [{"role": m["role"], "content": truncate(m["content"])} for m in msgs[:MAX_MESSAGES]]


def make_timestamp(rng: Random, day: str) -> str:
    base = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
    ts = base + timedelta(seconds=rng.randrange(86400), milliseconds=rng.randrange(1000))
    if rng.random() < 0.15:  # a few in the other common ISO-8601 UTC spelling
        return ts.isoformat(timespec="milliseconds")           # ...T08:15:42.123+00:00
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")                   # ...T08:15:42Z


def make_uuid(rng: Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def dumps(rec: dict) -> str:
    return json.dumps(rec, ensure_ascii=False, sort_keys=True)


# ---------------------------------------------------------------- build

def build(shared: Path, out: Path, seed: int) -> dict:
    trees = load_oasst_trees(shared)
    lottery = load_lottery(shared)
    hh = load_hh(shared)
    arena_v01, arena_v20 = load_arena(shared)
    ailu = load_ailuminate(shared)
    pii_recs = load_pii(shared)

    # ---- tiny clusters (taken first, so pools can exclude them)
    tiny = []  # (cluster name, day index, messages, source, ref)
    used_lottery = set()
    for name, day_i, items in TINY_CLUSTERS:
        for kind, key in items:
            if kind == "arena_v01_cluster":
                for q in arena_v01:
                    if q["cluster"] == key:
                        tiny.append((name, day_i, [{"role": "user", "content": q["prompt"]}],
                                     "arena_hard_v0.1", q["uid"]))
            elif kind == "oasst_lottery_match":
                for i, text in enumerate(lottery):
                    if re.search(key, text):
                        used_lottery.add(i)
                        tiny.append((name, day_i, [{"role": "user", "content": text}],
                                     "oasst_prompt_lottery", f"line:{i + 1}"))

    # ---- benign pools (seeded shuffles)
    def ok(msgs):
        return not any(TINY_TOPIC_RE.search(m["content"]) for m in msgs)

    arena_pool = []
    for q in arena_v01:
        if q["cluster"] in ARENA_SKIP_CLUSTERS or any(q["cluster"] == k for _, _, it in TINY_CLUSTERS for _, k in it):
            continue
        arena_pool.append(("arena_hard_v0.1", q["uid"], q["prompt"]))
    for q in arena_v20:
        if q["subcategory"] == "coding":
            arena_pool.append(("arena_hard_v2.0", q["uid"], q["prompt"]))
    arena_pool = [(s, u, [{"role": "user", "content": p}]) for s, u, p in arena_pool
                  if len(p) <= MAX_PROMPT_CHARS]
    arena_pool = [x for x in arena_pool if ok(x[2])]

    tree_pool = [("oasst_tree", t["message_tree_id"], oasst_path(t)) for t in trees]
    tree_pool = [x for x in tree_pool if x[2] and ok(x[2])]
    lottery_pool = [("oasst_prompt_lottery", f"line:{i + 1}", [{"role": "user", "content": t}])
                    for i, t in enumerate(lottery) if i not in used_lottery]
    lottery_pool = [x for x in lottery_pool if ok(x[2])]
    hh_pool = [("hh_rlhf_harmless_base_test", f"line:{i + 1}", m) for i, m in hh]
    hh_pool = [x for x in hh_pool if ok(x[2])]
    pools = {"arena": arena_pool, "oasst_tree": tree_pool,
             "oasst_lottery": lottery_pool, "hh": hh_pool}
    for name, pool in pools.items():
        rng_for(seed, f"pool:{name}").shuffle(pool)

    # ---- hazards
    ailu = [r for r in ailu if r["hazard"] not in EXCLUDED_HAZARDS]
    emerging = [r for r in ailu if r["hazard"] == EMERGING_HAZARD]
    r_em = rng_for(seed, "emerging")
    r_em.shuffle(emerging)
    emerging.sort(key=lambda r: not EMERGING_THEME.search(r["prompt_text"]))  # stable
    emerging = emerging[:sum(EMERGING_PER_DAY)]
    r_em.shuffle(emerging)
    background_cats = sorted({r["hazard"] for r in ailu} - {EMERGING_HAZARD})
    r_bg = rng_for(seed, "background_hazards")
    r_bg.shuffle(background_cats)
    by_cat = {c: sorted((r for r in ailu if r["hazard"] == c), key=lambda r: r["release_prompt_id"])
              for c in background_cats}
    for c in background_cats:
        r_bg.shuffle(by_cat[c])
    background = []
    i = 0
    while len(background) < sum(BACKGROUND_HAZARD_PER_DAY):
        c = background_cats[i % len(background_cats)]
        background.append(by_cat[c][i // len(background_cats)])
        i += 1

    # ---- assemble per-day conversation specs
    convs = []  # dicts with internal keys prefixed by "_"
    em_i = bg_i = 0
    cursor = {k: 0 for k in pools}
    for d, day in enumerate(DAYS):
        day_specs = []
        for _ in range(EMERGING_PER_DAY[d]):
            r = emerging[em_i]; em_i += 1
            day_specs.append(dict(_source="ailuminate_demo", _ref=r["release_prompt_id"],
                                  _group="emerging", _hazard=r["hazard"], _tiny=None,
                                  messages=[{"role": "user", "content": r["prompt_text"]}]))
        for _ in range(BACKGROUND_HAZARD_PER_DAY[d]):
            r = background[bg_i]; bg_i += 1
            day_specs.append(dict(_source="ailuminate_demo", _ref=r["release_prompt_id"],
                                  _group="hazard", _hazard=r["hazard"], _tiny=None,
                                  messages=[{"role": "user", "content": r["prompt_text"]}]))
        for name, day_i, msgs, src, ref in tiny:
            if day_i == d:
                day_specs.append(dict(_source=src, _ref=ref, _group="tiny_cluster",
                                      _hazard=None, _tiny=name, messages=msgs))
        remaining = PER_DAY - len(day_specs)
        counts = [int(round(remaining * share)) for _, share in MIX[:-1]]
        counts.append(remaining - sum(counts))
        for (pool_name, _), n in zip(MIX, counts):
            for _ in range(n):
                src, ref, msgs = pools[pool_name][cursor[pool_name]]
                cursor[pool_name] += 1
                day_specs.append(dict(_source=src, _ref=ref, _group="background",
                                      _hazard=None, _tiny=None, messages=msgs))
        for s in day_specs:
            s["_day"] = d
            s["messages"] = clean_messages(s["messages"])
        convs.extend(day_specs)
    assert len(convs) == PER_DAY * len(DAYS)

    # ---- system prompts on a share of conversations
    r_sys = rng_for(seed, "system")
    for c in convs:
        if len(c["messages"]) < MAX_MESSAGES and r_sys.random() < SYSTEM_SHARE:
            c["messages"].insert(0, {"role": "system", "content": r_sys.choice(SYSTEM_PROMPTS)})

    # ---- accounts
    r_acc = rng_for(seed, "accounts")
    n_general = sum(n for n, _ in ACCOUNT_SIZES)
    n_total = n_general + len(TINY_CLUSTERS)
    accounts = []
    seen = set()
    email_slots = set(r_acc.sample(range(n_total), N_EMAIL_ACCOUNTS))
    for k in range(n_total):
        while True:
            if k in email_slots:
                a = f"user{r_acc.randrange(1000, 10000)}@example.com"
            else:
                a = "acct_" + f"{r_acc.getrandbits(40):010x}"
            if a not in seen:
                seen.add(a)
                break
        accounts.append(a)
    tiny_accounts = {name: accounts[n_general + j] for j, (name, _, _) in enumerate(TINY_CLUSTERS)}
    general_accounts = accounts[:n_general]
    slots = []
    k = 0
    for n, size in ACCOUNT_SIZES:
        for _ in range(n):
            slots.extend([general_accounts[k]] * size)
            k += 1
    general_convs = [c for c in convs if c["_group"] != "tiny_cluster"]
    n_malformed_with_account = sum(1 for m in MALFORMED if m[2] != "missing_account_id")
    assert len(slots) == len(general_convs) + n_malformed_with_account, (len(slots), len(general_convs))
    r_acc.shuffle(slots)
    # Malformed records reuse accounts that also have valid conversations.
    size_of = {a: slots.count(a) for a in set(slots)}
    for j in range(len(general_convs), len(slots)):
        if size_of[slots[j]] == 1:
            swap = next(i for i in range(len(general_convs)) if size_of[slots[i]] > 1)
            slots[swap], slots[j] = slots[j], slots[swap]
    for c, a in zip(general_convs, slots):
        c["account_id"] = a
    malformed_accounts = slots[len(general_convs):]
    for c in convs:
        if c["_group"] == "tiny_cluster":
            c["account_id"] = tiny_accounts[c["_tiny"]]

    # ---- ids and timestamps
    r_id = rng_for(seed, "ids")
    r_ts = rng_for(seed, "timestamps")
    for c in convs:
        c["conversation_id"] = make_uuid(r_id)
        c["timestamp"] = make_timestamp(r_ts, DAYS[c["_day"]])

    # ---- PII injection
    r_pii = rng_for(seed, "pii")
    candidates = []
    for idx, rec in enumerate(pii_recs):
        text = rec["full_text"]
        if "\n" in text or not 30 <= len(text) <= 300 or "\u05d2\u20ac" in text:
            continue
        sens = [s for s in rec["spans"] if s["entity_type"] in PII_SENSITIVE]
        if not sens or any(len(s["entity_value"]) < 5 for s in sens):
            continue
        if any(s["entity_type"] == "PERSON" and " " not in s["entity_value"].strip() for s in sens):
            continue
        assert all(text[s["start_position"]:s["end_position"]] == s["entity_value"] for s in rec["spans"])
        candidates.append((idx, rec))
    r_pii.shuffle(candidates)
    chosen_pii, used = [], set()
    for etype, quota in PII_QUOTA:
        got = 0
        for idx, rec in candidates:
            if got == quota:
                break
            if idx in used or etype not in {s["entity_type"] for s in rec["spans"]}:
                continue
            used.add(idx); chosen_pii.append((idx, rec)); got += 1
    r_pii.shuffle(chosen_pii)
    targets = []
    per_day = len(chosen_pii) // len(DAYS)
    for d in range(len(DAYS)):
        day_convs = [c for c in convs if c["_day"] == d]
        n = per_day + (1 if d < len(chosen_pii) % len(DAYS) else 0)
        targets.extend(r_pii.sample(day_convs, n))
    pii_manifest = {}
    for c, (idx, rec) in zip(targets, chosen_pii):
        user_idx = [i for i, m in enumerate(c["messages"]) if m["role"] == "user"]
        mi = r_pii.choice(user_idx)
        orig = c["messages"][mi]["content"]
        style = r_pii.randrange(3)
        text = rec["full_text"]
        if style == 0:
            new = f"{text}\n\n{orig}"
        elif style == 1:
            new = f"{orig}\n\n{text}"
        else:
            new = f"{text} {orig}"
        c["messages"][mi]["content"] = new
        c["_pii"] = True
        spans = sorted(rec["spans"], key=lambda s: (s["start_position"], s["end_position"]))
        pii_manifest[c["conversation_id"]] = {
            "day": DAYS[c["_day"]],
            "message_index": mi,
            "injected_text": text,
            "source_record": idx,
            "pii_values": [{"entity_type": s["entity_type"], "value": s["entity_value"]}
                           for s in spans if s["entity_type"] in PII_SENSITIVE],
            "other_spans": [{"entity_type": s["entity_type"], "value": s["entity_value"]}
                            for s in spans if s["entity_type"] not in PII_SENSITIVE],
        }

    # ---- malformed records (built from unused lottery prompts)
    spare = lottery_pool[cursor["oasst_lottery"]:]
    malformed = []
    acc_iter = iter(malformed_accounts)
    for j, (d, file_key, kind, field) in enumerate(MALFORMED):
        src, ref, msgs = spare[j]
        rec = {"conversation_id": make_uuid(r_id),
               "timestamp": make_timestamp(r_ts, DAYS[d]),
               "messages": [dict(m) for m in msgs]}
        if kind != "missing_account_id":
            rec["account_id"] = next(acc_iter)
        if kind == "missing_messages":
            del rec["messages"]
        elif kind == "empty_messages":
            rec["messages"] = []
        elif kind == "bad_role":
            rec["messages"].append({"role": "robot", "content": "BEEP. I am a robot. How can I help?"})
        elif kind == "non_string_content":
            rec["messages"][0]["content"] = 42
        elif kind == "bad_timestamp":
            rec["timestamp"] = "not-a-date"
        elif kind == "timestamp_wrong_day":
            rec["timestamp"] = make_timestamp(r_ts, DAYS[(d + 2) % len(DAYS)])
        line = dumps(rec)
        if kind == "invalid_json":
            line = line[: max(20, len(line) - 12)]  # truncated mid-record
        malformed.append(dict(day=d, file_key=file_key, kind=kind, field=field,
                              conversation_id=rec["conversation_id"], line=line,
                              source=src, ref=ref))

    # ---- write files
    for day in DAYS:
        if (out / day).exists():
            shutil.rmtree(out / day)
    out.mkdir(parents=True, exist_ok=True)
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        pa = pq = None
        print("WARNING: pyarrow not importable; the Parquet part is written as JSONL "
              "(part-002.jsonl) instead", file=sys.stderr)

    r_pos = rng_for(seed, "positions")
    r_split = rng_for(seed, "split")
    labels = {}
    malformed_manifest = []
    written = {}
    for d, day in enumerate(DAYS):
        (out / day).mkdir(parents=True)
        day_convs = sorted((c for c in convs if c["_day"] == d),
                           key=lambda c: (c["timestamp"][:19], c["conversation_id"]))
        files = {"main": (MAIN_FILE, day_convs)}
        if d in SPLIT:
            key, fname, n = SPLIT[d]
            idx = set(r_split.sample(range(len(day_convs)), n))
            files["main"] = (MAIN_FILE, [c for i, c in enumerate(day_convs) if i not in idx])
            if key == "parquet" and pq is None:
                key, fname = "jsonl", fname.replace(".parquet", ".jsonl")
            files[key] = (fname, [c for i, c in enumerate(day_convs) if i in idx])
        for key, (fname, items) in files.items():
            rel = f"{day}/{fname}"
            lines = [(dumps(public(c)), None) for c in items]
            for m in malformed:
                if m["day"] == d and m["file_key"] == key:
                    pos = r_pos.randrange(1, len(lines))
                    lines.insert(pos, (m["line"], m))
            for lineno, (_, m) in enumerate(lines, start=1):
                if m is not None:
                    malformed_manifest.append({
                        "file": rel, "line": lineno, "kind": m["kind"],
                        "expected_field": m["field"], "conversation_id": m["conversation_id"]})
            path = out / rel
            if key == "parquet":
                write_parquet(pa, pq, path, [public(c) for c in items])
            else:
                payload = "".join(text + "\n" for text, _ in lines).encode("utf-8")
                if key == "gz":
                    payload = gzip.compress(payload, compresslevel=9, mtime=0)
                path.write_bytes(payload)
            written[rel] = len(items)
            for c in items:
                labels[c["conversation_id"]] = {
                    "day": day, "file": rel, "source": c["_source"], "source_ref": c["_ref"],
                    "group": c["_group"], "hazard": c["_hazard"], "tiny_cluster": c["_tiny"],
                    "pii_injected": bool(c.get("_pii")),
                    "has_system_prompt": c["messages"][0]["role"] == "system",
                    "n_messages": len(c["messages"]),
                }

    for cid, entry in pii_manifest.items():
        entry["file"] = labels[cid]["file"]
    malformed_manifest.sort(key=lambda m: (m["file"], m["line"]))

    write_json(out / "pii_manifest.json", {
        "description": "Synthetic PII (microsoft/presidio-research synth_dataset_v2) injected into "
                       "one user turn per listed conversation. pii_values (names, e-mails, phone, "
                       "card, IBAN, SSN, IP, street address, driver licence) must never appear in "
                       "pipeline outputs; other_spans are weaker context spans (place, date, title, "
                       "organisation, ...) listed for completeness.",
        "conversations": pii_manifest,
    })
    write_json(out / "malformed_manifest.json", malformed_manifest)
    tiny_summary = {}
    for name, day_i, _ in TINY_CLUSTERS:
        ids = sorted(cid for cid, l in labels.items() if l["tiny_cluster"] == name)
        tiny_summary[name] = {"day": DAYS[day_i], "conversation_ids": ids}
    write_json(out / "labels.json", {
        "description": "Ground truth for tests: where each valid conversation came from and "
                       "which planted pattern it belongs to. group is one of background, hazard "
                       "(AILuminate, not the emerging category), emerging, tiny_cluster. Contains "
                       "no account ids.",
        "seed": seed,
        "emerging": {"hazard": EMERGING_HAZARD,
                     "per_day": dict(zip(DAYS, EMERGING_PER_DAY))},
        "tiny_clusters": tiny_summary,
        "excluded_hazards": sorted(EXCLUDED_HAZARDS),
        "conversations": labels,
    })
    (out / "NOTICE.md").write_text(notice(shared), encoding="utf-8")

    # ---- self-checks
    for cid, entry in pii_manifest.items():
        rel = labels[cid]["file"]
        c = next(x for x in convs if x["conversation_id"] == cid)
        content = c["messages"][entry["message_index"]]["content"]
        assert all(v["value"] in content for v in entry["pii_values"]), cid
    assert len({c["account_id"] for c in convs}) == n_total
    em_accounts = {c["account_id"] for c in convs if c["_group"] == "emerging"}
    assert len(em_accounts) >= 8, len(em_accounts)
    for c in convs:
        assert 1 <= len(c["messages"]) <= MAX_MESSAGES
        assert all(len(m["content"]) <= MAX_CHARS + 310 for m in c["messages"])
    return {"written": written, "labels": labels, "emerging_accounts": len(em_accounts),
            "malformed": malformed_manifest, "pii": len(pii_manifest),
            "parquet": pq is not None}


def public(c: dict) -> dict:
    return {k: v for k, v in c.items() if not k.startswith("_")}


def write_parquet(pa, pq, path: Path, rows: list[dict]) -> None:
    schema = pa.schema([
        ("account_id", pa.string()),
        ("conversation_id", pa.string()),
        ("messages", pa.list_(pa.struct([("content", pa.string()), ("role", pa.string())]))),
        ("timestamp", pa.string()),
    ])
    table = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, path, compression="snappy")


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, sort_keys=True, indent=2) + "\n",
                    encoding="utf-8")


def source_facts(shared: Path, folder: str) -> list[str]:
    keep = ("repo:", "commit:", "path:", "paths:", "license:")
    lines = (shared / folder / "SOURCE.txt").read_text(encoding="utf-8").splitlines()
    facts = [l.strip() for l in lines if l.strip().startswith(keep)]
    return [f.replace(" (stored gzipped here)", "") for f in facts]


NOTICE_SOURCES = [
    ("oasst_en100", "OpenAssistant (LAION-AI) en_100 message trees and prompt lottery",
     "Apache-2.0", "one root-to-leaf path per message tree (multi-turn), single opening prompts"),
    ("hh_rlhf_harmless_test", "Anthropic HH-RLHF harmless-base test split",
     "MIT, Copyright (c) 2022 Anthropic", "\"chosen\" transcripts split into user/assistant turns"),
    ("arena_hard_prompts", "LMArena Arena-Hard-Auto questions (v0.1 and v2.0 coding)",
     "Apache-2.0", "single user prompts"),
    ("ailuminate_demo", "MLCommons AILuminate v1.0 demo prompt set (en_US)",
     "CC-BY-4.0 (data), https://creativecommons.org/licenses/by/4.0/",
     "single user prompts; hazards cse and sxc_prn were not used"),
    ("pii_presidio_synth", "Microsoft Presidio research synthetic PII dataset v2",
     "MIT, Copyright (c) Microsoft Corporation", "sentences inserted into user turns"),
]


def notice(shared: Path) -> str:
    out = [
        "# data/sample: notice and attribution",
        "",
        "> **Content warning.** Some prompts in this sample are deliberately harmful: they come "
        "from safety evaluation sets (MLCommons AILuminate, Anthropic HH red-team dialogues) and "
        "were written to elicit dangerous answers (crime, weapons, self-harm, hate, privacy "
        "violations). Keep their text out of logs, issues and reports; the pipeline must only "
        "ever surface aggregated, privacy-filtered descriptions.",
        "",
        "This folder is a **derived, seeded subset** of the public datasets below, built by "
        "`scripts/build_sample.py` (fixed seed, byte-for-byte reproducible). Records were "
        "selected, truncated (messages to about 1,500 characters, conversations to at most "
        "6 messages), re-shaped into a common conversation format and given synthetic "
        "conversation ids, account ids and timestamps (November 2026). Some conversations got "
        "a generic system prompt, synthetic PII sentences were inserted into about 15% of them "
        "(`pii_manifest.json`), and a few deliberately malformed records were added "
        "(`malformed_manifest.json`). `labels.json` records the source of every conversation. "
        "Account ids, conversation ids, timestamps and the injected PII values are synthetic.",
        "",
        "## Sources",
        "",
    ]
    for folder, title, lic, use in NOTICE_SOURCES:
        out.append(f"### {title}")
        out.append("")
        out.append(f"- licence: {lic}")
        out.append(f"- used as: {use}")
        for fact in source_facts(shared, folder):
            out.append(f"- upstream {fact}")
        out.append("")
    out += [
        "Changes made: sampling, truncation, re-formatting, insertion of synthetic PII, "
        "synthetic metadata. The AILuminate prompts are used under CC-BY-4.0 with attribution "
        "to MLCommons; the dataset is provided \"AS IS\" without warranty.",
        "",
        "## Licence texts",
        "",
        "Apache-2.0 (OpenAssistant, Arena-Hard-Auto): "
        "https://www.apache.org/licenses/LICENSE-2.0",
        "",
        "CC-BY-4.0 (AILuminate data): https://creativecommons.org/licenses/by/4.0/legalcode",
        "",
    ]
    for folder, name in [("hh_rlhf_harmless_test", "Anthropic HH-RLHF"),
                         ("pii_presidio_synth", "Microsoft presidio-research")]:
        text = (shared / folder / "LICENSE").read_text(encoding="utf-8")
        body = "\n".join(l.strip() for l in text.strip().splitlines())
        out += [f"### {name} (MIT)", "", "```", body, "```", ""]
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared-data", type=Path, default=DEFAULT_SHARED,
                    help="folder holding the evaluation sets (default: ../shared/data)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args(argv)
    if not (args.shared_data / "oasst_en100").is_dir():
        print(f"error: {args.shared_data} does not hold the evaluation sets", file=sys.stderr)
        return 2
    info = build(args.shared_data, args.out, args.seed)
    labels = info["labels"]
    for day in DAYS:
        items = [l for l in labels.values() if l["day"] == day]
        by_src = {}
        for l in items:
            key = l["group"] if l["group"] != "background" else l["source"]
            by_src[key] = by_src.get(key, 0) + 1
        bad = sum(1 for m in info["malformed"] if m["file"].startswith(day))
        print(f"{day}: {len(items)} valid + {bad} malformed  "
              + ", ".join(f"{k}={v}" for k, v in sorted(by_src.items())))
    print(f"PII-injected conversations: {info['pii']}; emerging hazard {EMERGING_HAZARD} "
          f"over {info['emerging_accounts']} accounts; parquet part: "
          f"{'yes' if info['parquet'] else 'no (JSONL fallback)'}")
    digest = hashlib.sha256()
    for p in sorted(args.out.rglob("*")):
        if p.is_file():
            digest.update(str(p.relative_to(args.out)).encode() + b"\0" + p.read_bytes())
    print(f"sha256(tree) = {digest.hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
