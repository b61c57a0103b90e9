"""The CloudEvents 1.0 envelope in structured JSON mode."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from recovery.common.ids import new_id
from recovery.common.timeutil import utcnow


class CloudEvent(BaseModel):
    """One fact that happened; ``type`` is also the NATS subject."""

    model_config = ConfigDict(frozen=True)

    specversion: str = "1.0"
    id: str = Field(default_factory=new_id)
    source: str
    type: str
    subject: str
    time: datetime = Field(default_factory=utcnow)
    datacontenttype: str = "application/json"
    data: dict[str, Any] = Field(default_factory=dict)

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_json(cls, raw: bytes) -> "CloudEvent":
        return cls.model_validate_json(raw)


def source_of(event_type: str) -> str:
    """``recovery.goals.goal.created`` comes from the ``goals`` service."""
    parts = event_type.split(".")
    if len(parts) != 4 or parts[0] != "recovery":
        raise ValueError(f"event type must be recovery.<service>.<entity>.<verb>: {event_type}")
    return parts[1]
