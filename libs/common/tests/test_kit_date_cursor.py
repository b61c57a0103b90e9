"""Cursors over records kept most recent day first (reviews, appraisals, supervision)."""

from datetime import date

import pytest

from recovery.common.pagination import decode_date_cursor, encode_cursor
from recovery.common.problems import Problem


def test_a_day_cursor_reads_back_the_day_and_the_record() -> None:
    cursor = encode_cursor(date(2026, 5, 1).isoformat(), "review-7")
    assert decode_date_cursor(cursor) == (date(2026, 5, 1), "review-7")


@pytest.mark.parametrize("value", ["not-a-day", "2026-13-01", 42])
def test_a_cursor_without_a_day_is_a_400_problem(value: str | int) -> None:
    with pytest.raises(Problem) as raised:
        decode_date_cursor(encode_cursor(value, "review-7"))
    assert (raised.value.status, raised.value.kind) == (400, "invalid-cursor")
