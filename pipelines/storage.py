"""Moving a day's files between the Dagster host and an object store, with Beam's filesystems.

Beam workers on Dataflow (or on Flink and Spark without a shared mount) cannot see
the Dagster host's disk. With an *exchange* folder (``gs://``, ``s3://``) the Beam
jobs read their inputs from it and write their outputs to it; the host uploads what
a job reads before it runs and downloads what it wrote afterwards. The same Beam
filesystems (and pipeline options: credentials, endpoints) serve both sides.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

COPY_BUFFER = 8 * 1024 * 1024


def configure(beam_args: Sequence[str]) -> None:
    """Give Beam's filesystems the jobs' options (e.g. ``--s3_endpoint_url``, ``--project``)."""
    FileSystems.set_options(PipelineOptions(list(beam_args)))


def is_local(path: str) -> bool:
    """Whether ``path`` is on this machine's filesystem (no scheme, or ``file://``)."""
    return FileSystems.get_scheme(path) in (None, "file")


def join(folder: str, *parts: str) -> str:
    """``folder/part/...`` for a local path or an object-store URI."""
    return FileSystems.join(folder, *parts)


def matching_files(folder: str, patterns: Iterable[str]) -> list[str]:
    """The files in ``folder`` matching any of ``patterns`` (object stores have no empty folders)."""
    results = FileSystems.match([join(folder, pattern) for pattern in patterns])
    return sorted({meta.path for result in results for meta in result.metadata_list})


def upload(local: Path, uri: str) -> None:
    """Copy the local file to ``uri`` (an object store writes it whole on close)."""
    with (
        local.open("rb") as src,
        FileSystems.create(uri, compression_type=CompressionTypes.UNCOMPRESSED) as dst,
    ):
        shutil.copyfileobj(src, dst, COPY_BUFFER)


def download(uri: str, local: Path) -> None:
    """Copy ``uri`` to the local file, replacing it atomically (a temp name, then a rename).

    Raises:
        FileNotFoundError: ``uri`` does not exist.
    """
    if not FileSystems.exists(uri):
        raise FileNotFoundError(f"{uri} does not exist")
    local.parent.mkdir(parents=True, exist_ok=True)
    temporary = local.with_name(f".{local.name}.{uuid.uuid4().hex}.tmp")
    try:
        with (
            FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as src,
            temporary.open("wb") as dst,
        ):
            shutil.copyfileobj(src, dst, COPY_BUFFER)
        os.replace(temporary, local)
    finally:
        temporary.unlink(missing_ok=True)


def delete_folder(folder: str) -> None:
    """Delete every object under ``folder`` (what a job left there, Beam temp files included)."""
    if is_local(folder):
        shutil.rmtree(folder, ignore_errors=True)
        return
    prefix = folder.rstrip("/") + "/"
    if FileSystems.match([prefix + "**"])[0].metadata_list:
        FileSystems.delete([prefix])  # an object store deletes every object under a "/"-ended prefix
