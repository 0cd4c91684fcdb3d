"""Dagster Definitions: assets, checks, the daily job, and one resource set per deployment.

The deployment is chosen by one setting, ``LOOKOUT_DEPLOYMENT`` (``local`` by
default). Secrets come from the environment through ``dg.EnvVar``.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from assets.resources import (
    BeamRunnerResource,
    ClusteringConfigResource,
    EmbeddedLLMResource,
    EmbedderResource,
    FlaggingResource,
    HierarchyResource,
    LookoutPaths,
    PrivacyResource,
    RedactionResource,
    TaxonomyResource,
    VLLMServerResource,
)
from assets.stages import (
    base_clusters,
    cluster_hierarchy,
    cluster_report,
    cluster_tracks,
    conversation_facets,
    daily,
    k_anonymity_thresholds,
    privacy_audit_floor,
    redacted_conversations,
    released_clusters,
)

LOCAL_STATE = ".lookout/state"


def local_resources(
    input_dir: str = "data/sample", out_dir: str = "out", state_dir: str = LOCAL_STATE, exchange_dir: str = ""
) -> dict[str, Any]:
    """Resources for one machine: FnApiRunner, the embedded CPU LLM, files on disk."""
    return {
        "paths": LookoutPaths(
            input_dir=input_dir, out_dir=out_dir, state_dir=state_dir, exchange_dir=exchange_dir
        ),
        "beam_runner": BeamRunnerResource(runner="FnApiRunner"),
        "redaction": RedactionResource(
            pseudonym_key=os.environ.get("LOOKOUT_PSEUDONYM_KEY") or None,
            local_key_file=f"{state_dir}/pseudonym.key",
        ),
        "llm": EmbeddedLLMResource(),
        "embedder": EmbedderResource(),
        "clustering": ClusteringConfigResource(),
        "hierarchy": HierarchyResource(),
        # The sample's clusters are tiny: a demo budget (labelled so in the report) and tight
        # bounds keep selection releasing clusters and noisy counts readable.
        "privacy": PrivacyResource(
            min_accounts=3,
            min_conversations=3,
            dp_epsilon=8.0,
            dp_max_clusters_per_account=2,
            dp_max_conversations_per_account=2,
            dp_selection_epsilon=6.0,
            dp_demo_budget=True,
        ),
        "flagging": FlaggingResource(),
        "taxonomy": TaxonomyResource(),
    }


RESOURCES_BY_DEPLOYMENT: dict[str, dict[str, Any]] = {
    "local": local_resources(),
    # One machine, Beam through a portable job service (e.g. a Flink or Spark job server, or
    # `python -m apache_beam.runners.portability.local_job_service_main --port 8099`).
    "portable": {
        **local_resources(),
        "beam_runner": BeamRunnerResource(
            runner="PortableRunner",
            extra_args=["--job_endpoint=localhost:8099", "--environment_type=LOOPBACK"],
        ),
    },
    "production": {
        "paths": LookoutPaths(
            input_dir=dg.EnvVar("LOOKOUT_INPUT_DIR"),
            out_dir=dg.EnvVar("LOOKOUT_OUT_DIR"),
            state_dir=dg.EnvVar("LOOKOUT_STATE_DIR"),
            # Beam workers that cannot mount state_dir (Dataflow) exchange data through this object-store folder.
            exchange_dir=os.environ.get("LOOKOUT_EXCHANGE_DIR", ""),
        ),
        "beam_runner": BeamRunnerResource(
            runner=dg.EnvVar("LOOKOUT_BEAM_RUNNER"), options_file=dg.EnvVar("LOOKOUT_BEAM_OPTIONS_FILE")
        ),
        # Dataflow workers read the key from storage (LOOKOUT_PSEUDONYM_KEY_URI); other runners from the environment.
        "redaction": RedactionResource(pseudonym_key_uri=dg.EnvVar("LOOKOUT_PSEUDONYM_KEY_URI"))
        if os.environ.get("LOOKOUT_PSEUDONYM_KEY_URI")
        else RedactionResource(pseudonym_key=dg.EnvVar("LOOKOUT_PSEUDONYM_KEY")),
        "llm": VLLMServerResource(
            base_url=dg.EnvVar("LOOKOUT_VLLM_URL"),
            model="Qwen/Qwen2.5-7B-Instruct",
        ),
        "embedder": EmbedderResource(),
        "clustering": ClusteringConfigResource(),
        "hierarchy": HierarchyResource(),
        "privacy": PrivacyResource(min_accounts=25, min_conversations=50, dp_selection_epsilon=1.0),
        "flagging": FlaggingResource(min_conversations=50),
        "taxonomy": TaxonomyResource(),
    },
}

ASSETS = [
    redacted_conversations,
    conversation_facets,
    base_clusters,
    cluster_hierarchy,
    released_clusters,
    cluster_tracks,
    cluster_report,
]

daily_pipeline = dg.define_asset_job(
    "daily_pipeline", selection=dg.AssetSelection.assets(*ASSETS), partitions_def=daily
)
daily_schedule = dg.build_schedule_from_partitioned_job(daily_pipeline, hour_of_day=2)


def deployment_name(deployment: str | None = None) -> str:
    """The deployment asked for, else ``LOOKOUT_DEPLOYMENT``, else ``local``."""
    return deployment or os.environ.get("LOOKOUT_DEPLOYMENT", "local")


def build_definitions(
    deployment: str | None = None,
    paths: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> dg.Definitions:
    """Definitions for a deployment (``local`` or ``production``).

    Args:
        deployment: Resource set name; defaults to ``LOOKOUT_DEPLOYMENT`` or ``local``.
        paths: Optional ``input_dir``/``out_dir``/``state_dir`` (and ``exchange_dir``) overriding the deployment's paths.
        overrides: Resources replacing the deployment's, by key.
    """
    name = deployment_name(deployment)
    if name not in RESOURCES_BY_DEPLOYMENT:
        raise ValueError(
            f"unknown LOOKOUT_DEPLOYMENT {name!r}; expected one of {sorted(RESOURCES_BY_DEPLOYMENT)}"
        )
    resources = dict(RESOURCES_BY_DEPLOYMENT[name])
    if paths:
        if name == "local":
            resources = local_resources(**paths)
        else:  # the deployment's exchange folder stays unless paths names one
            resources = {
                **resources,
                "paths": LookoutPaths(**{"exchange_dir": resources["paths"].exchange_dir, **paths}),
            }
    resources.update(overrides or {})
    return dg.Definitions(
        assets=ASSETS,
        asset_checks=[k_anonymity_thresholds, privacy_audit_floor],
        jobs=[daily_pipeline],
        schedules=[daily_schedule],
        resources=resources,
    )


defs = build_definitions()
