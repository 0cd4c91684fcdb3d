"""PII re-scan of text that can reach a report (cluster titles and descriptions)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import polars as pl

from privacy.redaction import Redactor


def rescan_text_columns(
    frame: pl.DataFrame, columns: Sequence[str], redactor: Redactor
) -> tuple[pl.DataFrame, Counter[str]]:
    """Redact any PII the analyzer still finds in ``columns``; returns the frame and hit counts by type."""
    hits: Counter[str] = Counter()
    updates = {}
    for column in columns:
        values: list[str | None] = []
        for value in frame[column].to_list():
            if value is None:
                values.append(None)
                continue
            redacted = redactor.redact(value)
            hits.update(redacted.entities)
            values.append(redacted.text)
        updates[column] = pl.Series(column, values, dtype=pl.Utf8)
    return frame.with_columns(**updates), hits
