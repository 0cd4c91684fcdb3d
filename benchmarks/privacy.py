"""The privacy gate, measured: canary leaks, auditor agreement, coverage cost and DP error.

* **Canaries**: ``--canaries`` made-up people (a name with a rare condition, an
  address, a phone number, a secret), each planted in one conversation (so one
  account; distinct accounts while the sample has them), in a day built from the bundled sample (itself built from
  ``../shared/data``). The real Dagster job runs on that day in a temp folder
  (redaction, facets with the embedded LLM, clustering, naming, thresholds, PII
  re-scan, DP counts, report). Every canary string is then looked for, exactly
  and as a near-match, in each stage's state and in everything under ``out/``;
  ``canaries_leaked`` counts canaries with any string in ``out/``, and each
  canary is attributed to the first layer after which none of its strings
  remains. The job's ``released_clusters`` asset already applies the LLM
  privacy auditor and DP partition selection; the benchmark audits the released
  table once more (from the same cache) to attribute each canary to a layer, so
  ``canaries_leaked_after_auditor`` is measured on the released table.
* **Auditor agreement**: ``--auditor-texts`` cluster texts, half general (real
  Chatbot Arena topic-cluster names from ``arena_hard_prompts`` in aggregate
  phrasing), half the same shape with one Presidio synthetic PII sentence
  (``pii_presidio_synth``) holding a person or contact/ID detail injected.
  Accuracy: the share where "released at the floor" matches "general".
* **Coverage**: share of the day's conversations (with facets) in released base
  clusters with no gate, with the thresholds, with thresholds and auditor, and
  with DP partition selection in place of the account threshold.
* **DP error**: mean relative error of the published conversation counts of the
  day's clusters vs the exact counts, over ``--trials`` draws at ``--epsilon``.

    python -m benchmarks.privacy [--canaries 50] [--auditor-texts 100] [--work DIR]
    python -m benchmarks.privacy --auditor-only [--auditor-offset 100]   # the floor, on disjoint texts
"""

from __future__ import annotations

import argparse
import difflib
import gzip
import json
import random
import re
import shutil
import tempfile
import time
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "sample"
SHARED = REPO.parent / "shared" / "data"
OUT = REPO / "benchmarks" / "results" / "privacy.json"
DAY = "2026-11-04"
SOURCE_DAYS = ("2026-11-04", "2026-11-01")
CONDITIONS = [
    "Fabry disease",
    "Wilson's disease",
    "Gaucher disease",
    "Pompe disease",
    "Kawasaki disease",
    "acromegaly",
    "Addison's disease",
    "myasthenia gravis",
]
STREETS = ["Lane", "Crescent", "Row", "Terrace", "Close", "Mews"]
# A synthetic sentence counts as private with a contact or ID detail, or a person's name with a personal fact.
CONTACT_OR_ID = {
    "STREET_ADDRESS",
    "PHONE_NUMBER",
    "EMAIL_ADDRESS",
    "CREDIT_CARD",
    "IBAN_CODE",
    "US_SSN",
    "IP_ADDRESS",
    "US_DRIVER_LICENSE",
}
PERSONAL_FACT = {"AGE", "DATE_TIME", "NRP", "TITLE", "GPE", "ORGANIZATION"}
NEAR = 0.85  # similarity ratio counted as a near-match


# --- canaries -----------------------------------------------------------------------


def _word(rng: random.Random, syllables: int) -> str:
    onsets, vowels, codas = "bdfgklmnprstvzq", "aeiou", ["", "n", "r", "x", "th", "l"]
    return "".join(
        rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas) for _ in range(syllables)
    ).capitalize()


def make_canaries(n: int, seed: int = 13) -> list[dict[str, str]]:
    """``n`` unique made-up people with an address, a phone number and a secret."""
    rng = random.Random(seed)
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    while len(out) < n:
        name = f"{_word(rng, 2)} {_word(rng, 3)}"
        if name in seen:
            continue
        seen.add(name)
        out.append(
            {
                "name": name,
                "condition": rng.choice(CONDITIONS),
                "address": f"{rng.randint(100, 9899)} {_word(rng, 2)} {rng.choice(STREETS)}",
                "phone": f"0{rng.randint(1000, 9999)} {rng.randint(100000, 999999)}",
                "secret": f"{_word(rng, 2).upper()}-{rng.randint(1000, 9999)}-{_word(rng, 1).upper()}",
            }
        )
    return out


def canary_sentence(c: dict[str, str]) -> str:
    """How a canary appears in a user's message."""
    return (
        f" By the way, I am {c['name']} and I was just diagnosed with {c['condition']}. I live at {c['address']}, "
        f"you can reach me on {c['phone']}, and my locker code is {c['secret']}."
    )


def canary_strings(c: dict[str, str]) -> list[str]:
    """The strings whose presence counts as a leak (the condition alone is not identifying)."""
    return [c["name"], c["address"], c["phone"], c["secret"]]


def _valid_records(day: str) -> list[dict]:
    records = []
    for line in (SAMPLE / day / "conversations.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if (
            isinstance(record, dict)
            and isinstance(record.get("messages"), list)
            and record["messages"]
            and record.get("account_id")
        ):
            if isinstance(record.get("timestamp"), str) and record["timestamp"][:10] == day:
                records.append(record)
    return records


def build_day(input_dir: Path, canaries: list[dict[str, str]]) -> list[dict]:
    """Write one day of sample conversations with canaries planted; returns the planted records."""
    records = []
    for day in SOURCE_DAYS:
        for record in _valid_records(day):
            records.append({**record, "timestamp": DAY + record["timestamp"][10:]})
    # Each canary goes into one conversation (so one account); distinct accounts first.
    first_of_account: dict[str, int] = {}
    for i, record in enumerate(records):
        first_of_account.setdefault(record["account_id"], i)
    firsts = list(first_of_account.values())
    targets = (firsts + [i for i in range(len(records)) if i not in set(firsts)])[: len(canaries)]
    if len(targets) < len(canaries):
        raise SystemExit(f"only {len(targets)} conversations in the sample days for {len(canaries)} canaries")
    planted = []
    for canary, i in zip(canaries, targets, strict=False):
        messages = [dict(m) for m in records[i]["messages"]]
        first_user = next(j for j, m in enumerate(messages) if m.get("role") == "user")
        messages[first_user]["content"] = str(messages[first_user]["content"]) + canary_sentence(canary)
        records[i] = {**records[i], "messages": messages}
        planted.append(records[i])
    (input_dir / DAY).mkdir(parents=True, exist_ok=True)
    with open(input_dir / DAY / "conversations.jsonl", "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return planted


def _norm(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", text.lower())


def appears(needle: str, haystack: str) -> bool:
    """Exact (ignoring case, spaces and punctuation) or near-match of ``needle`` in ``haystack``."""
    target = _norm(needle)
    if not target:
        return False
    if target in _norm(haystack):
        return True
    words = [w for w in re.split(r"\s+", haystack) if w]
    n = len(needle.split())
    for k in {max(1, n - 1), n, n + 1}:
        for start in range(len(words) - k + 1):
            window = _norm(" ".join(words[start : start + k]))
            if (
                abs(len(window) - len(target)) <= 3
                and difflib.SequenceMatcher(None, window, target).ratio() >= NEAR
            ):
                return True
    return False


def texts_of(frame: pl.DataFrame) -> list[str]:
    """Every string value of a frame, nested lists and structs included."""
    out: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v)

    for row in frame.iter_rows():
        walk(row)
    return out


def out_texts(out_dir: Path) -> list[str]:
    """All text published under ``out/``: Parquet string values and any other file's text."""
    texts = []
    for path in sorted(out_dir.rglob("*")):
        if not path.is_file():
            continue
        if path.suffix == ".parquet":
            texts += texts_of(pl.read_parquet(path))
        texts.append(path.read_bytes().decode("utf-8", errors="ignore"))
    return texts


def found(canary: dict[str, str], texts: list[str]) -> bool:
    blob = "\n".join(texts)
    if any(_norm(s) in _norm(blob) for s in canary_strings(canary)):
        return True
    return any(appears(s, t) for s in canary_strings(canary) for t in texts)


# --- the pipeline run ---------------------------------------------------------------


def run_pipeline(work: Path) -> float:
    """Materialize the daily job for ``DAY`` on ``work/in``; returns seconds."""
    import dagster as dg

    from assets.definitions import build_definitions

    defs = build_definitions(
        "local",
        paths={"input_dir": str(work / "in"), "out_dir": str(work / "out"), "state_dir": str(work / "state")},
    )
    started = time.perf_counter()
    result = defs.resolve_job_def("daily_pipeline").execute_in_process(
        partition_key=DAY, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )
    if not result.success:
        raise SystemExit("the daily job failed; see the Dagster log above")
    return time.perf_counter() - started


# --- auditor agreement ---------------------------------------------------------------

TEMPLATES = [
    "Users asked for help with {t}.",
    "Requests about {t}, mostly explanations and worked examples.",
    "Users wanted step-by-step guidance on {t}.",
    "Questions on {t} from many different users.",
]


def _is_private(types: set[str]) -> bool:
    return bool(types & CONTACT_OR_ID) or ("PERSON" in types and bool(types & PERSONAL_FACT))


def labelled_texts(n: int, seed: int = 5, offset: int = 0) -> list[tuple[str, str, bool]]:
    """``(title, description, private)``: half general topic texts, half with one PII sentence injected.

    ``offset`` skips the first texts of the same sequence: ``labelled_texts(100, offset=100)``
    shares no topic or PII sentence with ``labelled_texts(100)``.
    """
    rng = random.Random(seed)
    topics = sorted(
        {
            json.loads(line)["cluster"]
            for line in (SHARED / "arena_hard_prompts" / "arena-hard-v0.1_question.jsonl").open()
        }
    )
    with gzip.open(SHARED / "pii_presidio_synth" / "synth_dataset_v2.json.gz", "rt", encoding="utf-8") as f:
        synth = [
            r["full_text"].replace("\n", " ")
            for r in json.load(f)
            if _is_private({s["entity_type"] for s in r["spans"]}) and 20 <= len(r["full_text"]) <= 220
        ]
    rng.shuffle(topics)
    rng.shuffle(synth)
    out = []
    for i in range(offset + n):
        topic = topics[i % len(topics)]
        description = rng.choice(TEMPLATES).format(t=topic.lower())
        private = i % 2 == 1
        if private:
            description += f' One request said: "{synth[i // 2]}"'
        out.append((topic, description, private))
    return out[offset:]


def agreement_at(scores: list, private: list[bool], floor: int, raw: bool = False) -> dict[str, float | int]:
    """Accuracy of "released at ``floor``" as "general", with the two kinds of error counted.

    ``raw`` reads the model's own score (no cap where it listed details).
    """
    released = [s is not None and (s.model_score if raw else s.score) >= floor for s in scores]
    pairs = list(zip(released, private, strict=True))
    return {
        "accuracy": sum(rel != priv for rel, priv in pairs) / len(pairs),
        "private_released": sum(rel and priv for rel, priv in pairs),
        "general_withheld": sum(not rel and not priv for rel, priv in pairs),
    }


def auditor_agreement(llm, n: int, floor: int, cache_path: Path, offset: int = 0) -> dict:
    """Agreement of "released at the floor" with "general" on the labelled texts.

    ``accuracy_model_score_only`` is the same without the cap on texts where
    the model listed details (the model's own score alone); ``by_floor`` is the
    agreement at every floor from the same ratings.
    """
    from privacy.auditor import PrivacyAuditor, cluster_text

    cases = labelled_texts(n, offset=offset)
    auditor = PrivacyAuditor(llm, floor=floor, cache_path=cache_path)
    texts = [cluster_text(title, description) for title, description, _ in cases]
    started = time.perf_counter()
    scores, rated = [], 0
    for start in range(0, len(texts), 10):  # chunks, so the cache keeps progress
        scores += auditor.rate(texts[start : start + 10])
        rated += min(10, len(texts) - start) - auditor.cache_hits
        print(f"  auditor agreement: {len(scores)}/{len(texts)} texts", flush=True)
    seconds = time.perf_counter() - started
    private = [c[2] for c in cases]
    return {
        "texts": len(cases),
        "offset": offset,
        **agreement_at(scores, private, floor),
        "accuracy_model_score_only": agreement_at(scores, private, floor, raw=True)["accuracy"],
        "private_total": sum(private),
        "general_total": len(cases) - sum(private),
        "audit_failed": sum(s is None for s in scores),
        "rated_now": rated,
        "seconds_per_text": seconds / rated if rated else None,
        "by_floor": {f: agreement_at(scores, private, f) for f in range(1, 6)},
    }


# --- coverage and DP ------------------------------------------------------------------


def day_members(state: Path, assignments: pl.DataFrame, clusters: pl.DataFrame) -> pl.DataFrame:
    """One row per conversation and node: the state's membership table, or the base assignments."""
    if (state / "membership.parquet").exists():
        return pl.read_parquet(state / "membership.parquet")
    if "parent_id" in clusters.columns:
        from clustering.hierarchy import membership

        return membership(assignments, clusters.select("cluster_id", "level", "parent_id"))
    return assignments.filter(pl.col("cluster_id") != -1).with_columns(pl.lit(0, pl.Int64).alias("level"))


def coverage(assignments: pl.DataFrame, released_ids: set[int], total: int) -> float:
    covered = assignments.filter(pl.col("cluster_id").is_in(list(released_ids))).height
    return covered / total if total else 0.0


def split_level_counts(members: pl.DataFrame, nodes: pl.DataFrame, codes: list[str], config, salt: str):
    """The earlier release, for comparison: every level measured on its own with epsilon / levels."""
    import dataclasses

    from privacy.dp import dp_cluster_counts

    levels = sorted(set(nodes["level"].to_list()))
    share = dataclasses.replace(config, epsilon=config.epsilon / len(levels))
    frames = [
        dp_cluster_counts(
            members.filter(pl.col("level") == lv),
            nodes.filter(pl.col("level") == lv)["cluster_id"].to_list(),
            codes,
            share,
            f"{salt}:{lv}",
        )[0]
        for lv in levels
    ]
    return pl.concat(frames), config.epsilon


def dp_error(
    members: pl.DataFrame, nodes: pl.DataFrame, codes: list[str], config, trials: int, split: bool = False
) -> float:
    """Mean relative error of the published conversation counts of ``nodes`` over ``trials`` releases.

    The release is the report's, ``privacy.release.dp_level_counts`` (base measured, parents summed),
    or with ``split`` the earlier one (each level measured with its share of epsilon). The reference
    is what an exact release of the same nodes would publish: for a parent, the conversations of its
    released base descendants (``dp_level_counts``) or all its members (``split``).
    """
    from privacy.release import base_ancestry, dp_level_counts

    exact = dict(members.group_by("cluster_id").len().iter_rows())
    if not split:
        base_level = int(members["level"].min())
        base_ids = nodes.filter(pl.col("level") == base_level)["cluster_id"].to_list()
        sums = (
            base_ancestry(members)
            .filter(pl.col("base_id").is_in(base_ids))
            .with_columns(pl.col("base_id").replace_strict(exact, return_dtype=pl.Int64).alias("n"))
            .group_by("cluster_id")
            .agg(pl.col("n").sum())
        )
        exact.update(dict(sums.iter_rows()))
    errors = []
    for _ in range(trials):
        noisy, _ = (split_level_counts if split else dp_level_counts)(members, nodes, codes, config, salt=DAY)
        for cid, count in zip(noisy["cluster_id"], noisy["conversations"], strict=True):
            if exact.get(cid):
                errors.append(abs(count - exact[cid]) / exact[cid])
    return sum(errors) / len(errors) if errors else float("nan")


# The two deployments' DP settings (assets/definitions.py): counts budget and bounds, selection budget and floor.
BUDGETS = {
    "local": {"counts": (8.0, 2, 2), "selection": (6.0, 1e-6, 1), "min_accounts": 3, "min_conversations": 3},
    "production": {
        "counts": (1.0, 4, 5),
        "selection": (1.0, 1e-6, 1),
        "min_accounts": 25,
        "min_conversations": 50,
    },
}


def selection_coverage(
    members: pl.DataFrame, assignments: pl.DataFrame, ok_ids: set[int], budget: dict, draws: int
) -> dict:
    """Expected coverage of DP partition selection at ``budget`` (mean over ``draws`` selections) and its accounting."""
    from privacy.dp import SelectionConfig, select_partitions

    eps, delta, k = budget["selection"]
    config = SelectionConfig(eps, delta, k, budget["min_accounts"])
    covered, kept, selection = [], [], None
    for _ in range(draws):
        selection = select_partitions(members, config, salt=DAY)
        covered.append(coverage(assignments, set(selection.base_kept) & ok_ids, assignments.height))
        kept.append(len(set(selection.kept) & ok_ids))
    assert selection is not None
    counts_eps = budget["counts"][0]
    return {
        "coverage": sum(covered) / draws,
        "nodes_released_mean": sum(kept) / draws,
        "threshold": max(selection.thresholds.values(), default=None),
        "selection_epsilon": selection.epsilon,
        "selection_delta": selection.delta,
        "counts_epsilon": counts_eps,
        "total_epsilon": selection.epsilon + counts_eps,
        "draws": draws,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--canaries", type=int, default=50)
    parser.add_argument("--auditor-texts", type=int, default=100)
    parser.add_argument("--floor", type=int, default=3)
    parser.add_argument(
        "--draws", type=int, default=50, help="DP partition selections averaged for the coverage"
    )
    parser.add_argument("--trials", type=int, default=200, help="DP releases averaged for the error")
    parser.add_argument(
        "--llm-threads",
        type=int,
        default=1,
        help="llama.cpp threads of the auditor (1 is fastest on a busy CPU)",
    )
    parser.add_argument("--work", help="keep the run here (reused if it already holds a finished run)")
    parser.add_argument(
        "--auditor-only",
        action="store_true",
        help="only the auditor's agreement at every floor, on labelled texts from --auditor-offset on "
        "(100: disjoint from the day run's); stored under auditor_floor_check in --out",
    )
    parser.add_argument("--auditor-offset", type=int, default=100)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    if args.auditor_only:
        floor_check(args)
        return

    from assets.stages import ASSIGNMENTS, CLUSTERS, FACETS, REDACTED, RELEASED
    from privacy.auditor import PrivacyAuditor, split_audited
    from privacy.gate import Thresholds, removal_trail
    from summarize.embedded import EmbeddedLLM
    from summarize.taxonomy import load_taxonomy

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="lookout-privacy-"))
    canaries = make_canaries(args.canaries)
    state = work / "state" / DAY
    if not (work / "out" / "reports" / DAY / "clusters.parquet").exists():
        shutil.rmtree(work, ignore_errors=True)
        build_day(work / "in", canaries)
        print(f"running the daily job on {work} ...", flush=True)
        pipeline_s = run_pipeline(work)
    else:
        pipeline_s = None

    # Where each canary stopped.
    redacted = pl.read_parquet(state / REDACTED)
    facets = pl.read_parquet(state / FACETS)
    clusters = pl.read_parquet(state / CLUSTERS)
    released = pl.read_parquet(state / RELEASED)
    assignments = pl.read_parquet(state / ASSIGNMENTS)
    llm = EmbeddedLLM(n_threads=args.llm_threads)
    auditor = PrivacyAuditor(llm, floor=args.floor, cache_path=work / "audit_cache.parquet")
    audited_released, auditor_withheld = split_audited(auditor.audit(released))
    planted_texts = [canary_sentence(c) for c in canaries]
    layers = [
        ("input", planted_texts),
        ("redaction", texts_of(redacted.select("messages"))),
        ("facets", texts_of(facets.select("summary", "request", "topic"))),
        ("naming", texts_of(clusters.select("title", "description"))),
        ("threshold_and_rescan", texts_of(released.select("title", "description"))),
        ("auditor", texts_of(audited_released.select("title", "description"))),
    ]
    published = out_texts(work / "out")
    stopped_at: dict[str, int] = {}
    leaked, leaked_after_auditor = 0, 0
    for canary in canaries:
        in_out = found(canary, published)
        leaked += in_out
        previous = "input"
        for name, texts in layers[1:]:
            if not found(canary, texts):
                stopped_at[name] = stopped_at.get(name, 0) + 1
                break
            previous = name
        else:
            stopped_at["not_stopped"] = stopped_at.get("not_stopped", 0) + 1
        leaked_after_auditor += previous == "auditor"

    # Coverage.
    total = assignments.height
    if "level" not in clusters.columns:
        clusters = clusters.with_columns(pl.lit(0, pl.Int64).alias("level"))
    base_ids = set(clusters.filter(pl.col("level") == 0)["cluster_id"].to_list()) - {-1}
    thresholds = Thresholds(
        BUDGETS["local"]["min_accounts"], BUDGETS["local"]["min_conversations"]
    )  # what the run used
    released_ids = set(released["cluster_id"].to_list())
    audited_ids = set(audited_released["cluster_id"].to_list())
    members = day_members(state, assignments, clusters)
    sizes = members.group_by("cluster_id").len()
    # The auditor on every cluster's name (not re-scanned) for the variants where DP selection replaces the threshold.
    audit_all = auditor.audit(clusters)
    ok_all = set(audit_all.filter(pl.col("audit_reason") == "ok")["cluster_id"].to_list())
    by_budget = {
        name: selection_coverage(
            members,
            assignments,
            set(sizes.filter(pl.col("len") >= b["min_conversations"])["cluster_id"].to_list()) & ok_all,
            b,
            args.draws,
        )
        for name, b in BUDGETS.items()
    }
    trail = removal_trail(
        DAY,
        {
            "threshold": clusters.filter(~pl.col("cluster_id").is_in(list(released_ids))).select(
                "cluster_id", pl.lit("below k-anonymity thresholds").alias("reason")
            ),
            "auditor": auditor_withheld,
        },
        clusters,
        members,
    )
    cov = {
        "no_gate": coverage(assignments, base_ids, total),
        "thresholds": coverage(assignments, released_ids, total),
        "thresholds_and_auditor": coverage(assignments, audited_ids, total),
        **{f"dp_selection_and_auditor_{name}": v["coverage"] for name, v in by_budget.items()},
    }

    # DP error on the day's cluster sizes (all clusters, so the sample's small ones count too), per budget,
    # for the report's release and for the earlier one that measured every level with its share of epsilon.
    from privacy.dp import DPConfig

    taxonomy = load_taxonomy()
    dp_members = members.join(
        facets.select("conversation_id", "concern_score", "categories"), on="conversation_id"
    )
    present = set(members["cluster_id"].to_list())
    nodes = clusters.filter(pl.col("cluster_id").is_in(list(present))).select("cluster_id", "level")
    released_nodes = nodes.filter(pl.col("cluster_id").is_in(list(released_ids)))
    mre: dict[str, dict[str, float | None]] = {}
    for name, budget in BUDGETS.items():
        config = DPConfig(*budget["counts"])
        mre[name] = {
            "epsilon": config.epsilon,
            "all": dp_error(dp_members, nodes, taxonomy.codes, config, args.trials),
            "released": dp_error(dp_members, released_nodes, taxonomy.codes, config, args.trials)
            if len(released_nodes)
            else None,
            "all_levels_split": dp_error(dp_members, nodes, taxonomy.codes, config, args.trials, split=True),
        }

    agreement = auditor_agreement(llm, args.auditor_texts, args.floor, work / "agreement_cache.parquet")

    report = {
        "day": DAY,
        "conversations": redacted.height,
        "conversations_with_facets": total,
        "clusters": len(base_ids),
        "nodes_by_level": dict(sorted(clusters.group_by("level").len().iter_rows())),
        "clusters_released": len(released_ids),
        "clusters_withheld_by_auditor": auditor_withheld.height,
        "auditor_scores_all_clusters": dict(
            sorted(audit_all.group_by("privacy_score").len().iter_rows(), key=str)
        ),
        "canaries_planted": len(canaries),
        "canaries_leaked": leaked,
        "canaries_leaked_after_auditor": leaked_after_auditor,
        "canaries_stopped_at": stopped_at,
        "auditor_accuracy": agreement["accuracy"],
        "auditor": {**agreement, "floor": args.floor, "model": llm.model_id},
        "coverage_without_gate": cov["no_gate"],
        "coverage_with_gate": cov["thresholds_and_auditor"],
        "coverage_by_layers": cov,
        "coverage_with_dp_selection": {name: v["coverage"] for name, v in by_budget.items()},
        "dp_selection": by_budget,
        "dp_budgets": BUDGETS,
        "dp_mean_relative_error": mre["local"]["all"],
        "dp_mean_relative_error_by_budget": mre,
        "dp_trials": args.trials,
        "audit_trail_rows": trail.height,
        "pipeline_seconds": None if pipeline_s is None else round(pipeline_s, 1),
        "thresholds": {
            "min_accounts": thresholds.min_accounts,
            "min_conversations": thresholds.min_conversations,
        },
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")

    rows = [
        ("canaries planted / leaked to out/", f"{len(canaries)} / {leaked}"),
        ("canaries leaked after auditor", str(leaked_after_auditor)),
        ("canaries stopped at", ", ".join(f"{k}: {v}" for k, v in stopped_at.items())),
        ("auditor accuracy at floor", f"{agreement['accuracy']:.3f} ({agreement['texts']} texts)"),
        ("  same, model's score alone (no cap)", f"{agreement['accuracy_model_score_only']:.3f}"),
        ("  private released / general withheld", f"{private_rel(agreement)}"),
        *[(f"coverage: {k}", f"{v:.3f}") for k, v in cov.items()],
        *[
            (
                f"{name}: selection eps={v['selection_epsilon']:g} delta={v['selection_delta']:.1e}",
                f"threshold {v['threshold']} accounts, total eps {v['total_epsilon']:g}, {v['nodes_released_mean']:.1f} nodes",
            )
            for name, v in by_budget.items()
        ],
        *[
            (
                f"{name}: DP mean relative error (counts eps={m['epsilon']:g})",
                f"{m['all']:.3f} all; {m['released'] if m['released'] is None else round(m['released'], 3)} released; "
                f"{m['all_levels_split']:.3f} with eps split over levels",
            )
            for name, m in mre.items()
        ],
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\nprivacy gate on {DAY} ({total} conversations with facets, {len(base_ids)} clusters)")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(f"wrote {args.out}")


def floor_check(args: argparse.Namespace) -> None:
    """The auditor at every floor on texts disjoint from the day run's: does another floor do better?"""
    from summarize.embedded import EmbeddedLLM

    llm = EmbeddedLLM(n_threads=args.llm_threads)
    cache = Path(args.work or tempfile.mkdtemp(prefix="lookout-auditor-")) / "floor_check_cache.parquet"
    cache.parent.mkdir(parents=True, exist_ok=True)
    agreement = auditor_agreement(llm, args.auditor_texts, args.floor, cache, offset=args.auditor_offset)
    out = Path(args.out)
    report = json.loads(out.read_text()) if out.exists() else {}
    report["auditor_floor_check"] = {**agreement, "floor": args.floor, "model": llm.model_id}
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"auditor on {agreement['texts']} labelled texts from offset {args.auditor_offset} ({llm.model_id})"
    )
    print(f"{'floor':>5}  {'accuracy':>8}  private released / general withheld")
    for floor, m in agreement["by_floor"].items():
        mark = "  <- configured" if floor == args.floor else ""
        print(
            f"{floor:>5}  {m['accuracy']:>8.2f}  {m['private_released']}/{agreement['private_total']} / "
            f"{m['general_withheld']}/{agreement['general_total']}{mark}"
        )
    print(f"wrote {out}")


def private_rel(agreement: dict) -> str:
    return (
        f"{agreement['private_released']}/{agreement['private_total']} / "
        f"{agreement['general_withheld']}/{agreement['general_total']}"
    )


if __name__ == "__main__":
    main()
