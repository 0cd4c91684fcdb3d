"""Emerging-abuse flagging on a seeded multi-day stream with planted campaigns.

Background traffic is real prompts nobody here wrote: general use from OASST,
Arena-Hard and HH-RLHF (harmless-base, red-team style), plus harmful requests
from AILuminate, HarmBench, AdvBench and StrongREJECT at a steady low rate, and
one AILuminate hazard at a steady 1% (known abuse that should not be re-flagged).
Campaigns are planted on given days: many fresh accounts sending variations of
one harmful behaviour (the seed and its near-duplicates among the harmful sets),
within a few hours of each day, growing by ``rate`` of the day's traffic per day.

Each day runs as the pipeline does after facet extraction: real MiniLM
embeddings, ``cluster_embeddings`` (UMAP + HDBSCAN), ``cluster_table``, the
privacy gate, ``coordination_signals`` and ``track_day`` (``link_tracks`` +
``flag_clusters``) with the trailing window of earlier days' stored tracks.

Facet extraction is replaced by label-derived facets: the embedded LLM takes
~3.6 s per conversation on this CPU (hours for this volume), so ``concerning``
and ``categories`` come from the datasets' own labels and ``request`` is the
prompt text. ``concern_score``, which the aggregates read, is the default model's
mean ``concern_score`` at that integer on the facet benchmark (``--concern``).
The benchmark therefore measures linking and flagging, not the LLM.

Base clusters are finer than the deployment default (``--min-cluster-fraction``
0.005 rather than 0.02): at 0.02 no campaign under 2% of a day's traffic can be
a base cluster of its own, so it is only ever seen inside a larger cluster.

Baseline in the same run: flag every released cluster whose mean concern is at
least ``FlagRules.min_mean_concern`` (no novelty, growth or coordination test).

Every seed draws its own stream and campaign behaviours; rates and start days are fixed.

    python -m benchmarks.flagging [--seeds 7,1,2,3] [--days 14] [--per-day 600] [--out benchmarks/results/flagging.json]
        [--rule FIELD=VALUE] [--sweep FIELD=V1,V2,...]

``--sweep`` scores each combination of flag thresholds on the same days (clusters,
tracks and coordination signals are computed once) and picks one by ``SELECTION_RULE``.
The defaults were checked on seeds disjoint from the benchmark's (``make bench`` runs both):

    python -m benchmarks.flagging --seeds 11,12,13,14 --sweep min_share_concerning=0.5,0.6,0.7,0.8,1.01
        --sweep min_mean_concern=2.8,3.0,3.2 --out benchmarks/results/flagging_tuning.json
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import itertools
import json
import os
import platform
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, fields, replace
from functools import partial
from pathlib import Path

import numpy as np
import polars as pl

from clustering.tracking import FlagRules

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
START = dt.date(2026, 11, 1)
# Prompts are cut to about the length of a facet ``request`` (also keeps embedding fast).
MAX_CHARS = 300
CACHE = REPO / ".lookout" / "cache"
FACETS_RESULT = REPO / "benchmarks" / "results" / "facets.json"

# Label mappings to AILuminate codes (None: harmful but no matching hazard).
HARMBENCH_CODES = {
    "cybercrime_intrusion": "ncr",
    "illegal": "ncr",
    "chemical_biological": "iwp",
    "harassment_bullying": "hte",
    "misinformation_disinformation": None,
    "harmful": None,
    "copyright": "ipv",
}
STRONGREJECT_CODES = {
    "Non-violent crimes": "ncr",
    "Violence": "vcr",
    "Disinformation and deception": None,
    "Hate, harassment and discrimination": "hte",
    "Illegal goods and services": "ncr",
    "Sexual content": "sxc_prn",
}


@dataclass(frozen=True)
class Prompt:
    """One real prompt with its label-derived facets."""

    text: str
    source: str
    concerning: int
    categories: tuple[str, ...]


def _jsonl(path: Path) -> list:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _csv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def load_prompts(severity: dict[str, str]) -> tuple[list[Prompt], list[Prompt]]:
    """General-use and harmful prompts with label-derived concern (1-5) and categories."""

    def harmful(text: str, source: str, code: str | None) -> Prompt:
        concern = {"critical": 5, "high": 4, "medium": 3, "low": 3}.get(severity.get(code or ""), 4)
        return Prompt(text[:MAX_CHARS], source, concern, (code,) if code else ())

    general = [
        Prompt(t[:MAX_CHARS], "oasst", 1, ())
        for t in _jsonl(DATA / "oasst_en100" / "prompt_lottery_en_250_text.jsonl")
    ]
    general += [
        Prompt(t["prompt"]["text"][:MAX_CHARS], "oasst", 1, ())
        for t in _jsonl(DATA / "oasst_en100" / "en_100_tree.jsonl")
    ]
    for name in ("arena-hard-v0.1_question.jsonl", "arena-hard-v2.0_question.jsonl"):
        general += [
            Prompt(r["prompt"][:MAX_CHARS], "arena_hard", 1, ())
            for r in _jsonl(DATA / "arena_hard_prompts" / name)
        ]
    # HH-RLHF harmless-base has no per-item harm label (red-team style dialogues): borderline concern 2.
    for r in _jsonl(DATA / "hh_rlhf_harmless_test" / "harmless-base_test.jsonl.gz"):
        first = r["chosen"].split("\n\nHuman: ", 1)[-1].split("\n\nAssistant:", 1)[0].strip()
        if first:
            general.append(Prompt(first[:MAX_CHARS], "hh_rlhf", 2, ()))
    bad = []
    for r in _csv(DATA / "ailuminate_demo" / "airr_official_1.0_demo_en_us_prompt_set_release.csv"):
        code = "spc" if r["hazard"].startswith("spc_") else r["hazard"]
        bad.append(harmful(r["prompt_text"], "ailuminate", code if code in severity else None))
    hb = DATA / "harmbench_advbench"
    bad += [
        harmful(r["Behavior"], "harmbench", HARMBENCH_CODES[r["SemanticCategory"]])
        for r in _csv(hb / "harmbench_behaviors_text_all.csv")
    ]
    bad += [harmful(r["Behavior"], "advbench", None) for r in _csv(hb / "advbench_behaviors.csv")]
    bad += [
        harmful(r["forbidden_prompt"], "strongreject", STRONGREJECT_CODES[r["category"]])
        for r in _csv(hb / "strongreject_dataset.csv")
    ]
    dedupe = lambda ps: list({p.text: p for p in ps}.values())  # noqa: E731
    return dedupe(general), dedupe(bad)


def embed_cached(texts: list[str]) -> tuple[np.ndarray, bool]:
    """MiniLM vectors of ``texts``, cached under ``.lookout/cache`` by a hash of model and texts."""
    import hashlib

    from clustering.embed import DEFAULT_EMBEDDER, SentenceTransformerEmbedder

    key = hashlib.sha256("\x00".join([DEFAULT_EMBEDDER, *texts]).encode()).hexdigest()[:16]
    path = CACHE / f"flagging_embeddings_{key}.npy"
    if path.exists():
        return np.load(path), True
    vectors = SentenceTransformerEmbedder().encode(texts)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors, False


def reason_kind(reason: str) -> str:
    """Which rule a reason comes from."""
    for prefix, kind in (
        ("coordination:", "coordination"),
        ("burst:", "burst"),
        ("new:", "new"),
        ("share of traffic grew", "growth"),
    ):
        if reason.startswith(prefix):
            return kind
    return "new_accounts" if "not seen in the trailing window" in reason else "concern"


def pick_campaigns(
    vectors: np.ndarray, n: int, min_similarity: float, min_variants: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Disjoint sets of near-duplicate harmful prompts (indices), one per campaign."""
    sims = vectors @ vectors.T
    neighbours = [np.flatnonzero(row >= min_similarity) for row in sims]
    eligible = [i for i, nb in enumerate(neighbours) if len(nb) >= min_variants]
    used: set[int] = set()
    out = []
    for i in rng.permutation(eligible):
        variants = [j for j in neighbours[i] if j not in used]
        if len(variants) >= min_variants:
            # Members and their neighbours leave the pool, so background never holds the behaviour.
            used.update(int(k) for j in variants for k in neighbours[j])
            out.append(np.array(sorted(variants)))
        if len(out) == n:
            break
    return out


def day_stream(
    day_index: int,
    per_day: int,
    n_general: int,
    background_pool: np.ndarray,
    harmful_share: float,
    steady_pool: np.ndarray,
    steady_share: float,
    campaigns: list[dict],
    accounts: np.ndarray,
    account_weights: np.ndarray,
    rng: np.random.Generator,
) -> pl.DataFrame:
    """One day's conversations: prompt index (into general + harmful), source label, account, timestamp."""
    day0 = dt.datetime.combine(START + dt.timedelta(days=day_index), dt.time(), tzinfo=dt.UTC)
    n_bad = rng.binomial(per_day, harmful_share)
    n_steady = rng.binomial(per_day, steady_share)
    prompt = np.concatenate(
        [
            rng.choice(n_general, per_day - n_bad - n_steady, replace=False),
            n_general + rng.choice(background_pool, n_bad, replace=False),
            n_general + rng.choice(steady_pool, n_steady, replace=False),
        ]
    )
    label = ["background"] * per_day
    account = list(rng.choice(accounts, per_day, p=account_weights))
    minute = list(rng.uniform(0, 24 * 60, per_day))
    for c, campaign in enumerate(campaigns):
        k = day_index - campaign["start_day"]
        if not 0 <= k < campaign["days"]:
            continue
        volume = max(1, round(campaign["rate"] * per_day * (k + 1)))
        prompt = np.concatenate([prompt, n_general + rng.choice(campaign["variants"], volume)])
        label += [f"campaign{c}"] * volume
        account += [f"camp{c}_{i}" for i in rng.integers(0, campaign["accounts"], volume)]
        start = rng.uniform(0, 21 * 60)
        minute += list(rng.uniform(start, start + campaign["window_minutes"], volume))
    return pl.DataFrame(
        {
            "conversation_id": [f"{day_index}-{i}" for i in range(len(prompt))],
            "account": account,
            "timestamp": [day0 + dt.timedelta(minutes=float(m)) for m in minute],
            "prompt": prompt.astype(np.int64),
            "label": label,
        },
        schema_overrides={"timestamp": pl.Datetime("us", "UTC")},
    )


def concern_scale(source: str) -> dict[int, float]:
    """The ``concern_score`` a label-derived concern (1-5) stands for.

    ``facets``: the default model's mean ``concern_score`` among the facet benchmark's
    items it rated that integer (``concern_by_integer`` in ``results/facets.json``), so
    the aggregates' thresholds see the product's scale (the blend lifts benign
    conversations to about 2.3); ``label``: the integer itself.
    """
    if source == "label":
        return {k: float(k) for k in range(1, 6)}
    table = json.loads(FACETS_RESULT.read_text())["cpu"].get("concern_by_integer", {})
    scale = {int(k): float(v["mean"]) for k, v in table.items()}
    if sorted(scale) != [1, 2, 3, 4, 5]:
        raise SystemExit(
            f"{FACETS_RESULT} has no concern_by_integer for 1-5; run benchmarks.facets (--rescore)"
        )
    return scale


# Fields that ``coordination_signals`` reads: a sweep reuses one day's signals, so it cannot vary them.
SIGNAL_FIELDS = ("request_similarity", "burst_window_minutes")


def parse_sweep(text: str) -> tuple[str, list[str]]:
    """``FIELD=V1,V2,...`` from the command line."""
    field, _, values = text.partition("=")
    if not values:
        raise argparse.ArgumentTypeError(f"--sweep {text!r}: expected FIELD=V1,V2,...")
    return field, values.split(",")


def sweep_variants(sweep: list[tuple[str, list[str]]], rules: FlagRules) -> list[FlagRules]:
    """Every combination of the swept ``FlagRules`` values, the other fields as in ``rules``."""
    names = {f.name for f in fields(FlagRules)}
    for field, _ in sweep:
        if field not in names:
            raise SystemExit(f"--sweep: FlagRules has no field {field!r}")
        if field in SIGNAL_FIELDS:
            raise SystemExit(f"--sweep: {field} changes the coordination signals, which a sweep reuses")
    grids = [[(field, type(getattr(rules, field))(v)) for v in values] for field, values in sweep]
    return [replace(rules, **dict(combo)) for combo in itertools.product(*grids)] if sweep else []


def changed_rules(rules: FlagRules, defaults: FlagRules) -> dict[str, float]:
    """The fields of ``rules`` that differ from ``defaults`` (empty: the defaults)."""
    return {k: v for k, v in asdict(rules).items() if v != getattr(defaults, k)}


def cluster_owners(assignments: pl.DataFrame, stream: pl.DataFrame) -> dict[int, str]:
    """The ``label`` that makes up at least half of each cluster (noise excluded).

    A campaign wins a 50/50 tie with background: it is sorted last, so the dict keeps
    it, which also makes the owner independent of ``group_by``'s row order.
    """
    owner = (
        assignments.join(stream.select("conversation_id", "label"), on="conversation_id")
        .filter(pl.col("cluster_id") != -1)
        .group_by("cluster_id", "label")
        .agg(pl.len().alias("n"))
        .with_columns((pl.col("n") / pl.col("n").sum().over("cluster_id")).alias("share"))
        .filter(pl.col("share") >= 0.5)
        .sort("cluster_id", pl.col("label").str.starts_with("campaign"))
    )
    return dict(zip(owner["cluster_id"].to_list(), owner["label"].to_list(), strict=True))


def run(args: argparse.Namespace) -> dict:
    from clustering.aggregate import assignments_frame, cluster_table
    from clustering.cluster import ClusterParams, cluster_embeddings
    from clustering.naming import NamedCluster
    from clustering.tracking import TrackingParams, centroids, coordination_signals, track_day
    from privacy.gate import Thresholds, apply_thresholds
    from summarize.taxonomy import load_taxonomy

    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    scale = concern_scale(args.concern)
    taxonomy = load_taxonomy()
    severity = taxonomy.severity_by_code()
    general, harmful = load_prompts(severity)
    if args.general_pool < len(general):
        # A fixed draw (not --seed), so every seed reuses the cached embeddings.
        pool = np.random.default_rng(0).choice(len(general), args.general_pool, replace=False)
        general = [general[i] for i in sorted(pool)]
    prompts = general + harmful
    t0 = time.perf_counter()
    vectors, cached = embed_cached([p.text for p in prompts])
    embed_seconds = time.perf_counter() - t0

    n_general = len(general)
    variant_sets = pick_campaigns(
        vectors[n_general:], len(args.rates), args.variant_similarity, args.min_variants, rng
    )
    if len(variant_sets) < len(args.rates):
        raise SystemExit(f"only {len(variant_sets)} behaviours have {args.min_variants} near-duplicates")
    sims = vectors[n_general:] @ vectors[n_general:].T
    banned = np.zeros(len(harmful), bool)
    for variants in variant_sets:
        banned |= (sims[variants] >= args.variant_similarity).any(axis=0)
    background_pool = np.flatnonzero(~banned)
    # Known, steady abuse: one AILuminate hazard at a constant share every day (not a campaign).
    hazards = sorted({p.categories[0] for p in harmful if p.source == "ailuminate" and p.categories})
    steady_hazard = hazards[int(rng.integers(len(hazards)))]
    steady_pool = np.array(
        [
            i
            for i in background_pool
            if harmful[i].source == "ailuminate" and harmful[i].categories == (steady_hazard,)
        ]
    )
    campaigns = [
        {
            "rate": rate,
            "start_day": start,
            "days": args.campaign_days,
            "variants": variants,
            "accounts": max(10, round(rate * args.per_day * args.campaign_days * 0.8)),
            "window_minutes": args.campaign_window_minutes,
        }
        for rate, start, variants in zip(args.rates, args.start_days, variant_sets, strict=True)
    ]
    accounts = np.array([f"user{i}" for i in range(args.accounts)])
    weights = 1.0 / np.arange(1, args.accounts + 1) ** 0.8
    weights /= weights.sum()

    cluster_params = ClusterParams(min_cluster_fraction=args.min_cluster_fraction)
    defaults = FlagRules()
    tracking = TrackingParams()
    rules = FlagRules(**{k: type(getattr(defaults, k))(v) for k, v in args.rule})
    variants = sweep_variants(args.sweep, rules)
    sweep_hits: list[dict[int, list[int]]] = [{c: [] for c in range(len(campaigns))} for _ in variants]
    thresholds = Thresholds()
    stored_by_day: dict[str, pl.DataFrame] = {}
    totals_by_day: dict[str, int] = {}
    accounts_by_day: dict[str, set[str]] = {}
    per_day = []
    lookout_hits: dict[int, list[int]] = {c: [] for c in range(len(campaigns))}
    campaign_reasons: dict[int, dict[int, list[str]]] = {c: {} for c in range(len(campaigns))}
    baseline_hits: dict[int, list[int]] = {c: [] for c in range(len(campaigns))}
    cluster_seconds = 0.0
    for d in range(args.days):
        day = (START + dt.timedelta(days=d)).isoformat()
        stream = day_stream(
            d,
            args.per_day,
            n_general,
            background_pool,
            args.harmful_share,
            steady_pool,
            args.steady_share,
            campaigns,
            accounts,
            weights,
            rng,
        )
        facets = stream.with_columns(
            pl.col("prompt").map_elements(lambda i: prompts[i].text, return_dtype=pl.Utf8).alias("request"),
            pl.col("prompt")
            .map_elements(lambda i: prompts[i].concerning, return_dtype=pl.Int64)
            .alias("concerning"),
            pl.col("prompt")
            .map_elements(lambda i: list(prompts[i].categories), return_dtype=pl.List(pl.Utf8))
            .alias("categories"),
            pl.col("prompt").map_elements(lambda i: prompts[i].source, return_dtype=pl.Utf8).alias("task"),
        ).with_columns(
            pl.col("request").alias("summary"),
            pl.col("concerning").replace_strict(scale, return_dtype=pl.Float64).alias("concern_score"),
        )
        day_vectors = vectors[stream["prompt"].to_numpy()]
        t0 = time.perf_counter()
        result = cluster_embeddings(day_vectors, cluster_params)
        cluster_seconds += time.perf_counter() - t0
        assignments = assignments_frame(facets, result.labels, day)
        names = [NamedCluster(c, f"cluster {c}", "", "benchmark") for c in range(result.n_clusters)]
        clusters = cluster_table(facets, assignments, names, taxonomy.codes, day)
        ids, centres = centroids(day_vectors, result.labels)
        centre_frame = pl.DataFrame(
            {"cluster_id": ids, "centroid": centres.tolist()},
            schema={"cluster_id": pl.Int64, "centroid": pl.List(pl.Float64)},
        )
        window = [
            (START + dt.timedelta(days=d - b)).isoformat()
            for b in range(tracking.window_days, 0, -1)
            if d - b >= 0
        ]
        history = pl.concat([stored_by_day[w] for w in window]) if window else pl.DataFrame()
        seen = set().union(*(accounts_by_day[w] for w in window)) if window else None
        coordination = coordination_signals(
            facets, assignments, rules, request_vectors=day_vectors, seen_accounts=seen
        )
        # Today's linking and flagging; only the flag rules vary (the sweep below).
        track = partial(
            track_day,
            day,
            clusters,
            centre_frame,
            len(facets),
            history,
            {w: totals_by_day[w] for w in window},
            severity,
            tracking,
        )
        stored, flags = track(rules, coordination)
        stored_by_day[day], totals_by_day[day], accounts_by_day[day] = (
            stored,
            len(facets),
            set(facets["account"]),
        )

        released, _ = apply_thresholds(clusters, assignments, thresholds)
        released_ids = set(released["cluster_id"].to_list())
        owner_of = cluster_owners(assignments, stream)
        lookout = [c for c in flags.filter(pl.col("flagged"))["cluster_id"].to_list() if c in released_ids]
        naive = [
            c
            for c in released.filter(
                (pl.col("mean_concern") >= rules.min_mean_concern)
                & (pl.col("conversations") >= rules.min_conversations)
            )["cluster_id"].to_list()
        ]
        active = [c for c, camp in enumerate(campaigns) if 0 <= d - camp["start_day"] < camp["days"]]
        reasons_of = dict(zip(flags["cluster_id"].to_list(), flags["reasons"].to_list(), strict=True))
        for flagged, hits in ((lookout, lookout_hits), (naive, baseline_hits)):
            for c in flagged:
                label = owner_of.get(c, "background")
                if label.startswith("campaign"):
                    idx = int(label.removeprefix("campaign"))
                    hits[idx].append(d)
                    if hits is lookout_hits:
                        kinds = {reason_kind(r) for r in reasons_of[c]} | set(
                            campaign_reasons[idx].get(d, [])
                        )
                        campaign_reasons[idx][d] = sorted(kinds)

        def is_false(c: int, owner_of: dict[int, str] = owner_of) -> bool:  # no campaign makes up half of c
            return not owner_of.get(c, "background").startswith("campaign")

        sweep_false_flags = []
        for v, variant in enumerate(variants):
            # Same clusters, tracks and coordination signals; only the flag thresholds differ.
            _, variant_flags = track(variant, coordination)
            flagged = [
                c
                for c in variant_flags.filter(pl.col("flagged"))["cluster_id"].to_list()
                if c in released_ids
            ]
            for c in flagged:
                if not is_false(c):
                    sweep_hits[v][int(owner_of[c].removeprefix("campaign"))].append(d)
            sweep_false_flags.append(sum(map(is_false, flagged)))

        codes_of = dict(zip(flags["cluster_id"].to_list(), flags["reason_codes"].to_list(), strict=True))
        false_codes = Counter(code for c in lookout if is_false(c) for code in codes_of[c])  # which rules
        campaign_rows = stream.filter(pl.col("label") != "background")
        in_clusters = assignments.join(campaign_rows.select("conversation_id"), on="conversation_id")
        reasons = flags.filter(pl.col("flagged") & pl.col("cluster_id").is_in(list(released_ids)))[
            "reasons"
        ].to_list()
        campaign_clusters = (
            flags.filter(
                pl.col("cluster_id").is_in([c for c, o in owner_of.items() if o.startswith("campaign")])
            )
            .join(
                clusters.select("cluster_id", "conversations", "unique_accounts", "mean_concern"),
                on="cluster_id",
            )
            .select(
                pl.col("cluster_id").replace_strict(owner_of, return_dtype=pl.Utf8).alias("campaign"),
                "conversations",
                "unique_accounts",
                "mean_concern",
                "is_new",
                "growth_ratio",
                "growth_q",
                "distinct_request_ratio",
                "new_account_share",
                "burst_p",
                "coordinated",
                "flagged",
            )
            .sort("campaign", "conversations")  # the join's row order is not fixed
        )
        per_day.append(
            {
                "day": day,
                "campaign_clusters": campaign_clusters.to_dicts(),
                "conversations": len(facets),
                "clusters": result.n_clusters,
                "released": len(released_ids),
                "new_clusters": int(flags["is_new"].sum()) if len(flags) else 0,
                "campaigns_active": active,
                "campaign_conversations": len(campaign_rows),
                "campaign_conversations_clustered": int((in_clusters["cluster_id"] != -1).sum()),
                "lookout_flags": len(lookout),
                "lookout_false_flags": sum(map(is_false, lookout)),
                "baseline_flags": len(naive),
                "baseline_false_flags": sum(map(is_false, naive)),
                "lookout_flag_reasons": {
                    k: sum(reason_kind(r) == k for rs in reasons for r in rs)
                    for k in sorted({reason_kind(r) for rs in reasons for r in rs})
                },
                "lookout_false_flag_codes": dict(sorted(false_codes.items())),
                **({"sweep_false_flags": sweep_false_flags} if variants else {}),
            }
        )
        print(
            f"day {day}: {result.n_clusters} clusters, {len(lookout)} flagged, {len(naive)} baseline",
            file=sys.stderr,
            flush=True,
        )

    def campaign_results(hits: dict[int, list[int]]) -> list[dict]:
        out = []
        for c, camp in enumerate(campaigns):
            first = min(hits[c], default=None)
            extra = (
                {"reasons_on_flagged_day": campaign_reasons[c].get(first, [])} if hits is lookout_hits else {}
            )
            out.append(
                {
                    **extra,
                    "rate": camp["rate"],
                    "start_day": camp["start_day"],
                    "flagged_day": first,
                    "days_to_flag": None if first is None else first - camp["start_day"],
                    "days_flagged": sorted(set(hits[c])),
                    "variants": len(camp["variants"]),
                }
            )
        return out

    scored = per_day[1:]  # day 0 has no history, so nothing can be new or growing
    quiet = [p for p in scored if not p["campaigns_active"]]

    def false_rate(key: str, days: list[dict], variant: int | None = None) -> float | None:
        counts = [p[key] if variant is None else p[key][variant] for p in days]
        return round(sum(counts) / len(days), 3) if days else None

    return {
        "benchmark": "flagging",
        "facets": "label-derived (dataset labels give concerning and categories; request = prompt text): "
        "the embedded LLM needs ~3.6 s per conversation on this CPU, too slow for this volume, "
        "so this measures linking and flagging, not facet extraction",
        "config": {
            "days": args.days,
            "conversations_per_day": args.per_day,
            "harmful_background_share": args.harmful_share,
            "steady_hazard": steady_hazard,
            "steady_hazard_share": args.steady_share,
            "campaign_rates_are": "share of the day's traffic added per day (day k of a campaign sends rate*(k+1)*per_day)",
            "campaign_days": args.campaign_days,
            "campaign_window_minutes": args.campaign_window_minutes,
            "variant_similarity": args.variant_similarity,
            "seed": args.seed,
            "concern_score": {
                "from": args.concern,
                "by_label": {str(k): round(v, 4) for k, v in scale.items()},
            },
            "general_pool": len(general),
            "cluster_params": asdict(cluster_params),
            "tracking": asdict(tracking),
            "flag_rules": asdict(rules),
            "privacy_thresholds": asdict(thresholds),
            "general_prompts": len(general),
            "harmful_prompts": len(harmful),
            "harmful_background_pool": len(background_pool),
        },
        "campaigns": campaign_results(lookout_hits),
        "false_flags_per_day": false_rate("lookout_false_flags", scored),
        "false_flags_per_campaign_free_day": false_rate("lookout_false_flags", quiet),
        "baseline": {
            "rule": f"released cluster with mean concern >= {rules.min_mean_concern} and >= {rules.min_conversations} conversations",
            "campaigns": campaign_results(baseline_hits),
            "false_flags_per_day": false_rate("baseline_false_flags", scored),
            "false_flags_per_campaign_free_day": false_rate("baseline_false_flags", quiet),
        },
        "sweep": [
            {
                "rules": changed_rules(variant, defaults),
                "campaigns": [
                    {k: c[k] for k in ("rate", "start_day", "flagged_day", "days_to_flag")}
                    for c in campaign_results(hits)
                ],
                "false_flags_per_day": false_rate("sweep_false_flags", scored, v),
                "false_flags_per_campaign_free_day": false_rate("sweep_false_flags", quiet, v),
            }
            for v, (variant, hits) in enumerate(zip(variants, sweep_hits, strict=True))
        ],
        "per_day": per_day,
        "seconds": {
            "total": round(time.perf_counter() - started, 1),
            "embed": round(embed_seconds, 1),
            "embeddings_from_cache": cached,
            "cluster": round(cluster_seconds, 1),
        },
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
    }


SELECTION_RULE = (
    "of the run's own rules and the swept variants, keep those that flag at least as many "
    "campaigns within 2 days as the run's own rules and flag every campaign those rules flag, "
    "no later in total; of these, the fewest false flags a day; within 0.01 a day of it, the "
    "fewest fields changed from the run's rules, then the smallest total change"
)


def within_two_days(delays: list[int | None]) -> int:
    """Campaigns flagged at most 2 days after they start (None: never flagged)."""
    return sum(d is not None and d <= 2 for d in delays)


def pick_variant(result: dict) -> dict | None:
    """The variant, the run's own rules included, that ``SELECTION_RULE`` picks (None: no sweep)."""
    reference = result["config"]["flag_rules"]
    ref = [c["days_to_flag"] for c in result["campaigns"]]
    caught = [i for i, d in enumerate(ref) if d is not None]

    def kept(variant: dict) -> bool:
        delays = [c["days_to_flag"] for c in variant["campaigns"]]
        return (
            within_two_days(delays) >= within_two_days(ref)
            and all(delays[i] is not None for i in caught)
            and sum(delays[i] or 0 for i in caught) <= sum(ref[i] or 0 for i in caught)
        )

    def change(variant: dict) -> tuple[int, float]:
        full = {**asdict(FlagRules()), **variant["rules"]}
        diffs = [abs(full[k] - reference[k]) for k in reference if full[k] != reference[k]]
        return len(diffs), sum(diffs)

    own = {
        "rules": changed_rules(FlagRules(**reference), FlagRules()),
        "campaigns": result["campaigns"],
        "false_flags_per_day": result["false_flags_per_day"],
    }
    if not result.get("sweep") or own["false_flags_per_day"] is None:
        return None
    # The run's own rules are always a candidate, so a pick never does worse than them.
    candidates = [own] + [v for v in result["sweep"] if kept(v) and v["false_flags_per_day"] is not None]
    fewest = min(v["false_flags_per_day"] for v in candidates)
    return min((v for v in candidates if v["false_flags_per_day"] <= fewest + 0.01), key=change)


def combine(runs: list[dict]) -> dict:
    """One result over seeds: every campaign of every seed, false flags averaged over seeds."""

    def mean(values: list[float | None]) -> float | None:
        kept = [v for v in values if v is not None]
        return round(sum(kept) / len(kept), 3) if kept else None

    def side(pick) -> dict:
        return {
            "campaigns": [{"seed": r["config"]["seed"], **c} for r in runs for c in pick(r)["campaigns"]],
            "false_flags_per_day": mean([pick(r)["false_flags_per_day"] for r in runs]),
            "false_flags_per_campaign_free_day": mean(
                [pick(r)["false_flags_per_campaign_free_day"] for r in runs]
            ),
        }

    config = {k: v for k, v in runs[0]["config"].items() if k not in ("seed", "steady_hazard")}
    false_codes: Counter[str] = Counter()
    for r in runs:
        for p in r["per_day"][1:]:  # day 0 is not scored
            false_codes.update(p["lookout_false_flag_codes"])
    result = {
        "benchmark": "flagging",
        "facets": runs[0]["facets"],
        "seeds": [r["config"]["seed"] for r in runs],
        "config": config,
        **side(lambda r: r),
        "baseline": {"rule": runs[0]["baseline"]["rule"], **side(lambda r: r["baseline"])},
        "false_flag_reason_codes": dict(sorted(false_codes.items())),
        "sweep": [
            {"rules": variant["rules"], **side(lambda r, i=i: r["sweep"][i])}
            for i, variant in enumerate(runs[0]["sweep"])
        ],
        "runs": [{k: v for k, v in r.items() if k not in ("benchmark", "facets")} for r in runs],
        "seconds": round(sum(r["seconds"]["total"] for r in runs), 1),
        "machine": runs[0]["machine"],
    }
    if result["sweep"]:
        chosen = pick_variant(result)
        result["sweep_pick"] = {"rule": SELECTION_RULE, "rules": None if chosen is None else chosen["rules"]}
    return result


def print_table(result: dict) -> None:
    """One table: per method and campaign rate, detection over seeds; then false flags per day."""
    seeds = len(result["seeds"])
    rows = []
    for method, side in (("lookout", result), ("baseline", result["baseline"])):
        for rate in sorted({c["rate"] for c in side["campaigns"]}):
            camps = [c for c in side["campaigns"] if c["rate"] == rate]
            delays = [c["days_to_flag"] for c in camps]
            shown = ", ".join("-" if d is None else f"+{d}" for d in delays)
            rows.append((method, f"{rate:.1%}/day", f"{within_two_days(delays)}/{seeds}", shown))
        rows.append(
            (
                method,
                "false flags/day",
                "",
                f"{side['false_flags_per_day']} (campaign-free days {side['false_flags_per_campaign_free_day']})",
            )
        )
    for variant in result.get("sweep", []):
        delays = [c["days_to_flag"] for c in variant["campaigns"]]
        changed = ", ".join(f"{k}={v}" for k, v in variant["rules"].items()) or "defaults"
        rows.append(
            (
                f"sweep {changed}",
                "all rates",
                f"{within_two_days(delays)}/{len(delays)}",
                f"false flags/day {variant['false_flags_per_day']} "
                f"(campaign-free days {variant['false_flags_per_campaign_free_day']}); "
                f"delay sum {sum(d for d in delays if d is not None)}",
            )
        )
    if "sweep_pick" in result:
        chosen = result["sweep_pick"]["rules"]
        shown = (
            "none (no scored days)"
            if chosen is None
            else ", ".join(f"{k}={v}" for k, v in chosen.items()) or "defaults"
        )
        rows.append(("sweep pick", "", "", shown))
    head = ("method", "campaign", "flagged <= 2 days", "days to flag per seed (- missed)")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--per-day", type=int, default=600)
    parser.add_argument("--harmful-share", type=float, default=0.03, help="harmful background from all sets")
    parser.add_argument(
        "--steady-share", type=float, default=0.01, help="known abuse from one hazard, every day"
    )
    parser.add_argument(
        "--rates", type=lambda s: [float(x) for x in s.split(",")], default=[0.002, 0.005, 0.01, 0.015, 0.02]
    )
    parser.add_argument(
        "--start-days", type=lambda s: [int(x) for x in s.split(",")], default=[2, 4, 6, 8, 10]
    )
    parser.add_argument("--campaign-days", type=int, default=3)
    parser.add_argument("--campaign-window-minutes", type=float, default=180.0)
    parser.add_argument("--variant-similarity", type=float, default=0.8)
    parser.add_argument("--min-variants", type=int, default=3)
    parser.add_argument("--accounts", type=int, default=3000)
    parser.add_argument(
        "--general-pool", type=int, default=2500, help="general-use prompts sampled from the sets"
    )
    parser.add_argument(
        "--min-cluster-fraction",
        type=float,
        default=0.005,
        help="base-cluster size as a share of the day (the deployment default 0.02 cannot isolate a campaign under 2%% of traffic)",
    )
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[7, 1, 2, 3])
    parser.add_argument(
        "--rule",
        action="append",
        default=[],
        type=lambda s: tuple(s.split("=", 1)),
        metavar="FIELD=VALUE",
        help="override a FlagRules field",
    )
    parser.add_argument(
        "--sweep",
        action="append",
        default=[],
        type=parse_sweep,
        metavar="FIELD=V1,V2,...",
        help="also score every combination of these FlagRules values on the same days (repeatable)",
    )
    parser.add_argument(
        "--concern",
        choices=("facets", "label"),
        default="facets",
        help="concern_score of a label-derived concern: the default model's mean at that integer "
        "(facets: results/facets.json) or the integer itself (label)",
    )
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "flagging.json"))
    args = parser.parse_args(argv)
    if len(args.rates) != len(args.start_days):
        parser.error("--rates and --start-days need the same length")
    if not DATA.is_dir():
        raise SystemExit(f"evaluation data {DATA} is absent")
    runs = []
    for seed in args.seeds:
        args.seed = seed
        runs.append(run(args))
    result = combine(runs)
    print_table(result)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
