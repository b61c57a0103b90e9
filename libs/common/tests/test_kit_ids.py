"""Ids: UUIDv7, so that ids made one after another sort together (and index appends)."""

import time
import uuid

from recovery.common.ids import new_id


def test_an_id_is_a_canonical_uuid_of_version_7_and_the_rfc_variant() -> None:
    for _ in range(1000):  # the text is written out by hand: many, for their random bits
        made = new_id()
        parsed = uuid.UUID(made)
        assert str(parsed) == made
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122


def test_an_id_begins_with_the_millisecond_it_was_made() -> None:
    before = time.time_ns() // 1_000_000
    made = uuid.UUID(new_id())
    after = time.time_ns() // 1_000_000
    assert before <= made.int >> 80 <= after


def test_ids_made_in_later_milliseconds_sort_after_earlier_ones() -> None:
    first = new_id()
    time.sleep(0.002)
    assert new_id() > first


def test_ids_made_in_the_same_millisecond_still_differ() -> None:
    made = {new_id() for _ in range(10_000)}
    assert len(made) == 10_000
