"""Input conversation records: the schema, and validation that names the failing field."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

Role = Literal["system", "user", "assistant", "tool", "developer"]


class Message(BaseModel):
    """One chat turn. ``content`` is text, or an OpenAI content-part list."""

    model_config = ConfigDict(extra="ignore")

    role: Role
    content: str | list[dict[str, Any]]

    def text(self) -> tuple[str, int]:
        """The text of this message and the number of non-text parts dropped."""
        if isinstance(self.content, str):
            return self.content, 0
        texts, dropped = [], 0
        for part in self.content:
            if part.get("type") == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            else:
                dropped += 1
        return "\n".join(texts), dropped


class Conversation(BaseModel):
    """A raw conversation log record as it arrives from the assistant's logs."""

    model_config = ConfigDict(extra="ignore")

    conversation_id: str = Field(min_length=1, max_length=256)
    account_id: str = Field(min_length=1, max_length=512)
    timestamp: dt.datetime
    messages: list[Message] = Field(min_length=1)

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)

    @field_validator("messages")
    @classmethod
    def _has_user_turn(cls, value: list[Message]) -> list[Message]:
        if not any(m.role == "user" for m in value):
            raise ValueError("no user turn")
        return value


@dataclass(frozen=True)
class DeadLetter:
    """A record that could not be used: where it was, which field, and why.

    Holds no record content, only its location, so dead letters are safe to keep.
    """

    stage: str
    source: str
    location: str
    conversation_id: str | None
    field: str
    reason: str

    def as_row(self) -> dict[str, Any]:
        """The dead-letter table row."""
        return {
            "stage": self.stage,
            "source": self.source,
            "location": self.location,
            "conversation_id": self.conversation_id,
            "field": self.field,
            "reason": self.reason,
        }


class RecordError(ValueError):
    """A record failed validation; carries its dead letter."""

    def __init__(self, dead_letter: DeadLetter):
        super().__init__(
            f"{dead_letter.source}:{dead_letter.location}: field {dead_letter.field!r}: {dead_letter.reason}"
        )
        self.dead_letter = dead_letter


def _field_path(loc: tuple[Any, ...]) -> str:
    """Pydantic's error location as ``messages[1].role``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("str", "list[dict[str,any]]"):  # union branch names, not fields
            continue
        else:
            path += f".{part}" if path else str(part)
    return path or "<record>"


def parse_record(
    raw: str | dict[str, Any],
    *,
    source: str,
    location: str,
    day: dt.date | None = None,
) -> Conversation:
    """Parse and validate one record.

    Args:
        raw: A JSON line or an already decoded mapping (a Parquet row).
        source: The file the record came from.
        location: ``line N`` or ``row N`` within the file.
        day: When given, the record's timestamp must fall on this UTC day.

    Returns:
        The validated conversation.

    Raises:
        RecordError: With a dead letter naming the field and the reason.
    """

    def fail(field: str, reason: str, conversation_id: Any = None) -> RecordError:
        cid = conversation_id if isinstance(conversation_id, str) else None
        return RecordError(DeadLetter("ingest", source, location, cid, field, reason))

    if isinstance(raw, str):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise fail("<record>", f"invalid JSON: {exc.msg} at column {exc.colno}") from None
    else:
        data = raw
    if not isinstance(data, dict):
        raise fail("<record>", f"expected a JSON object, got {type(data).__name__}")
    cid = data.get("conversation_id")
    try:
        record = Conversation.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise fail(_field_path(first["loc"]), f"{first['type']}: {first['msg']}", cid) from None
    if day is not None and record.timestamp.date() != day:
        raise fail(
            "timestamp",
            f"timestamp {record.timestamp.date().isoformat()} is outside partition {day.isoformat()}",
            cid,
        )
    return record
