"""Log lines are written in batches: a line waits briefly for the lines after it, a warning
goes at once with every line before it, in order, and nothing is left waiting."""

import asyncio

import pytest

from recovery.common.observability import LINE_WAIT_SECONDS, LogLines


async def test_a_line_waits_briefly_then_is_written_with_the_ones_after_it(
        capsys: pytest.CaptureFixture[str]) -> None:
    lines = LogLines()
    lines.write("one")
    lines.write("two")
    assert capsys.readouterr().out == ""
    await asyncio.sleep(LINE_WAIT_SECONDS * 3)
    assert capsys.readouterr().out == "one\ntwo\n"


async def test_a_warning_is_written_at_once_after_the_lines_before_it(
        capsys: pytest.CaptureFixture[str]) -> None:
    lines = LogLines()
    lines.write("request")
    lines.write("warning", at_once=True)
    assert capsys.readouterr().out == "request\nwarning\n"


def test_without_an_event_loop_a_line_is_written_at_once(
        capsys: pytest.CaptureFixture[str]) -> None:
    LogLines().write("starting")
    assert capsys.readouterr().out == "starting\n"


def test_a_loop_that_ended_before_its_timer_leaves_no_line_waiting_for_ever(
        capsys: pytest.CaptureFixture[str]) -> None:
    lines = LogLines()

    async def log(line: str) -> None:
        lines.write(line)

    asyncio.run(log("in a loop that then ends"))  # its timer never fires
    assert capsys.readouterr().out == ""

    async def log_and_wait(line: str) -> None:
        lines.write(line)
        await asyncio.sleep(LINE_WAIT_SECONDS * 3)

    asyncio.run(log_and_wait("in the next loop"))
    assert capsys.readouterr().out == "in a loop that then ends\nin the next loop\n"
