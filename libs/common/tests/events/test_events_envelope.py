"""The outbox's envelope text: what the CloudEvent model would write, field for field."""

from datetime import UTC, datetime
from typing import Any

import pytest

from recovery.common.events.envelope import CloudEvent
from recovery.common.events.outbox import envelope_text, outbox_row

TYPE = "recovery.crisis-plans.version.signed"


@pytest.mark.parametrize("time", [datetime(2026, 12, 7, 5, 58, 0, 202920, tzinfo=UTC),
                                  datetime(2026, 12, 7, 5, 58, tzinfo=UTC)])
@pytest.mark.parametrize("data", [
    {},
    {"plan_id": "p-1", "version": 2, "active_version": None, "not_individualised": False,
     "review_on": "2031-01-01", "nested": {"list": [1, 2.5, "three"]}},
    {"team_id": "Équipe — 東京", "quote": 'say "hi"\\n', "ratio": 0.1},
])
def test_the_envelope_is_the_text_the_cloudevent_model_writes(time: datetime,
                                                             data: dict[str, Any]) -> None:
    text = envelope_text("01a24f14-9b0a-7bdb-b4de-3a3ae429410a", TYPE, "p-1", time, data)
    model = CloudEvent(id="01a24f14-9b0a-7bdb-b4de-3a3ae429410a", source="crisis-plans",
                       type=TYPE, subject="p-1", time=time, data=data)
    assert text == model.model_dump_json()
    assert CloudEvent.from_json(text.encode()) == model


def test_an_outbox_row_carries_its_envelope_with_the_same_id_and_time() -> None:
    row = outbox_row(TYPE, "p-1", {"plan_id": "p-1"})
    event = CloudEvent.from_json(row["envelope"].encode())
    assert (event.id, event.type, event.subject, event.time, event.source) == (
        row["event_id"], TYPE, "p-1", row["occurred_at"], "crisis-plans")
    with pytest.raises(ValueError, match="recovery"):
        outbox_row("goal.created", "g-1", {})
