"""The outbox relay against a real nats-server, on SQLite and PostgreSQL."""

import asyncio
import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from eventkit_toy import (
    CREATED,
    OUTBOX,
    STREAM,
    create_toy_schema,
    eventually,
    running_events,
    stream_messages,
    toy_settings,
    unpublished,
    write_record,
)
from nats.js.api import DiscardPolicy
from sqlalchemy import Text, cast, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from recovery.common import db
from recovery.common.db import background_engine, create_engine, session_factory, wal_fold
from recovery.common.events.bus import EventBus
from recovery.common.events.outbox import OutboxEvent
from recovery.common.events.relay import OutboxRelay, PublishIncompleteError
from recovery.common.testing.processes import NatsServer
from recovery.common.testing.sqlite_files import count_in_file_alone


async def test_a_committed_change_publishes_exactly_one_cloudevent(
        nats: NatsServer, database_url: str,
        toy_sessions: async_sessionmaker[AsyncSession]) -> None:
    settings = toy_settings(nats.url, database_url)
    async with running_events(settings, toy_sessions) as running:
        assert await running.bus.wait_connected(within=5)
        record_id = str(uuid.uuid4())
        event = await write_record(toy_sessions, record_id)
        js = running.bus.js
        assert js is not None

        async def published() -> bool:
            return len(await stream_messages(js, STREAM)) >= 1

        await eventually(published)
        await asyncio.sleep(0.3)  # a second copy would have arrived by now
        messages = await stream_messages(js, STREAM)
    assert len(messages) == 1
    message = messages[0]
    body = json.loads(message.data or b"")
    assert body["specversion"] == "1.0"
    assert body["type"] == message.subject == CREATED
    assert body["subject"] == record_id
    assert body["source"] == "toy"
    assert body["id"] == event.id
    assert message.headers is not None and message.headers["Nats-Msg-Id"] == event.id
    assert await unpublished(toy_sessions) == 0
    # The envelope goes out as the text stored with the change, not decoded and re-encoded.
    async with toy_sessions() as session:
        connection = await session.connection()
        stored = (await connection.execute(select(cast(OUTBOX.c.envelope, Text))
                                           .where(OUTBOX.c.event_id == event.id))).scalar_one()
    assert message.data == stored.encode()


async def test_on_sqlite_the_relays_marks_fold_the_log_back_into_the_database_file(
        nats: NatsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The relay marks on in-loop connections, which never checkpoint; with the kit's fold
    its marks reach the database file itself, not only its write-ahead log."""
    monkeypatch.setattr(db, "FOLD_EVERY_SECONDS", 0.0)
    database = tmp_path / "outbox.db"
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    await create_toy_schema(engine)
    threaded = background_engine(engine)
    sessions = session_factory(engine)
    bus = EventBus(toy_settings(nats.url, f"sqlite+aiosqlite:///{database}"))
    bus.start()

    try:
        assert await bus.wait_connected(within=5)
        for fold_log, marked in ((None, 0), (wal_fold(threaded), 20)):
            relay = OutboxRelay(sessions, bus, fold_log=fold_log)
            for _ in range(10):
                await write_record(sessions, str(uuid.uuid4()))
            assert await relay.publish_pending() == 10
            await relay.stop()
            assert await unpublished(sessions) == 0
            assert count_in_file_alone(
                database, "SELECT count(*) FROM outbox_event WHERE published_at IS NOT NULL",
            ) == marked
    finally:
        await bus.stop()
        await threaded.dispose()
        await engine.dispose()


async def test_the_running_relay_publishes_each_event_once_and_marks_every_one(
        nats: NatsServer, database_url: str,
        toy_sessions: async_sessionmaker[AsyncSession]) -> None:
    """Marking happens in the background; published rows waiting for their mark must not be
    sent again (JetStream would hide it, so the relay's own count is checked)."""
    settings = toy_settings(nats.url, database_url, outbox_batch_size=50)
    async with running_events(settings, toy_sessions) as running:
        assert await running.bus.wait_connected(within=5)
        written = []
        for _ in range(300):
            written.append(await write_record(toy_sessions, str(uuid.uuid4())))
            if len(written) % 50 == 0:
                await asyncio.sleep(0.01)
        js = running.bus.js
        assert js is not None

        async def all_in_stream() -> bool:
            return len(await stream_messages(js, STREAM)) == 300

        await eventually(all_in_stream, within=10)
        ids = [json.loads(m.data or b"")["id"] for m in await stream_messages(js, STREAM)]
        await running.relay.stop()  # marks what it published before it ends
        assert await unpublished(toy_sessions) == 0
        assert running.relay.published == 300
    assert ids == [event.id for event in written]


async def test_a_rolled_back_change_publishes_nothing(
        nats: NatsServer, database_url: str,
        toy_sessions: async_sessionmaker[AsyncSession]) -> None:
    settings = toy_settings(nats.url, database_url)
    async with running_events(settings, toy_sessions) as running:
        assert await running.bus.wait_connected(within=5)
        await write_record(toy_sessions, str(uuid.uuid4()), commit=False)
        kept = await write_record(toy_sessions, str(uuid.uuid4()))
        js = running.bus.js
        assert js is not None

        async def published() -> bool:
            return len(await stream_messages(js, STREAM)) >= 1

        await eventually(published)
        await asyncio.sleep(0.3)
        messages = await stream_messages(js, STREAM)
    assert [json.loads(m.data or b"")["id"] for m in messages] == [kept.id]


async def test_the_relay_is_woken_at_commit_without_waiting_for_its_poll(
        nats: NatsServer, database_url: str,
        toy_sessions: async_sessionmaker[AsyncSession]) -> None:
    settings = toy_settings(nats.url, database_url, outbox_poll_seconds=30)
    async with running_events(settings, toy_sessions) as running:
        assert await running.bus.wait_connected(within=5)
        await asyncio.sleep(0.1)  # let the relay settle into its 30 s wait
        await write_record(toy_sessions, str(uuid.uuid4()))
        js = running.bus.js
        assert js is not None

        async def published() -> bool:
            return len(await stream_messages(js, STREAM)) == 1

        await eventually(published, within=1.0)


async def test_events_written_while_nats_is_down_are_published_in_order_once_it_is_back(
        nats: NatsServer, database_url: str,
        toy_sessions: async_sessionmaker[AsyncSession]) -> None:
    settings = toy_settings(nats.url, database_url)
    async with running_events(settings, toy_sessions) as running:
        assert await running.bus.wait_connected(within=5)
        nats.stop()
        written = [await write_record(toy_sessions, str(uuid.uuid4())) for _ in range(40)]
        await asyncio.sleep(0.5)  # the relay has polled in the outage
        assert await unpublished(toy_sessions) == 40
        nats.start()
        assert await running.bus.wait_connected(within=10)
        js = running.bus.js
        assert js is not None

        async def all_published() -> bool:
            return bool(await unpublished(toy_sessions) == 0)

        await eventually(all_published, within=10)
        messages = await stream_messages(js, STREAM)
    assert [json.loads(m.data or b"")["id"] for m in messages] == [e.id for e in written]


async def test_publishing_an_event_again_within_the_dedupe_window_is_dropped_by_jetstream(
        nats: NatsServer, database_url: str,
        toy_sessions: async_sessionmaker[AsyncSession]) -> None:
    """A relay that crashed between publish and mark publishes the batch again."""
    settings = toy_settings(nats.url, database_url)
    async with running_events(settings, toy_sessions, relay=False) as running:
        assert await running.bus.wait_connected(within=5)
        for _ in range(3):
            await write_record(toy_sessions, str(uuid.uuid4()))
        assert await running.relay.publish_pending() == 3
        async with toy_sessions() as session:
            connection = await session.connection()
            await connection.execute(update(OutboxEvent).values(published_at=None))
            await session.commit()
        assert await running.relay.publish_pending() == 3
        js = running.bus.js
        assert js is not None
        assert len(await stream_messages(js, STREAM)) == 3


async def test_two_relays_of_one_service_publish_every_event_once_and_in_order(
        nats: NatsServer, database_url: str,
        toy_sessions: async_sessionmaker[AsyncSession]) -> None:
    """Two replicas share the outbox: PostgreSQL takes turns under an advisory lock, and on
    both backends JetStream's dedupe keeps one copy of anything published twice."""
    settings = toy_settings(nats.url, database_url, outbox_batch_size=25)
    async with running_events(settings, toy_sessions, relay=False) as running:
        assert await running.bus.wait_connected(within=5)
        second_bus = EventBus(settings)
        second_bus.start()
        assert await second_bus.wait_connected(within=5)
        try:
            first = OutboxRelay(toy_sessions, running.bus, batch_size=25)
            second = OutboxRelay(toy_sessions, second_bus, batch_size=25)
            written = [await write_record(toy_sessions, str(uuid.uuid4())) for _ in range(200)]

            async def drain(relay: OutboxRelay) -> None:
                while await unpublished(toy_sessions):
                    await relay.publish_pending()
                    await asyncio.sleep(0)

            await asyncio.wait_for(asyncio.gather(drain(first), drain(second)), timeout=30)
            js = running.bus.js
            assert js is not None
            messages = await stream_messages(js, STREAM)
        finally:
            await second_bus.stop()
    assert [json.loads(m.data or b"")["id"] for m in messages] == [e.id for e in written]


async def test_published_events_older_than_the_retention_are_pruned_from_the_outbox(
        nats: NatsServer, database_url: str,
        toy_sessions: async_sessionmaker[AsyncSession]) -> None:
    settings = toy_settings(nats.url, database_url)
    async with running_events(settings, toy_sessions, relay=False) as running:
        assert await running.bus.wait_connected(within=5)
        await write_record(toy_sessions, str(uuid.uuid4()))
        assert await running.relay.publish_pending() == 1
        await write_record(toy_sessions, str(uuid.uuid4()))  # not yet published
        assert await running.relay.prune_published(older_than=timedelta(days=1)) == 0
        assert await running.relay.prune_published(older_than=timedelta(0)) == 1
        assert await unpublished(toy_sessions) == 1


async def test_the_relay_publishes_nothing_and_keeps_the_rows_while_nats_is_unreachable(
        database_url: str, toy_sessions: async_sessionmaker[AsyncSession]) -> None:
    settings = toy_settings("nats://127.0.0.1:1", database_url)
    async with running_events(settings, toy_sessions) as running:
        await write_record(toy_sessions, str(uuid.uuid4()))
        assert await running.relay.publish_pending() == 0
        await asyncio.sleep(0.3)
        assert not running.bus.connected
    assert await unpublished(toy_sessions) == 1


async def test_a_lost_stream_is_provisioned_again_and_the_backlog_published(
        nats: NatsServer, database_url: str,
        toy_sessions: async_sessionmaker[AsyncSession]) -> None:
    settings = toy_settings(nats.url, database_url)
    async with running_events(settings, toy_sessions) as running:
        assert await running.bus.wait_connected(within=5)
        written = await write_record(toy_sessions, str(uuid.uuid4()))
        nats.restart(lose_storage=True)
        later = await write_record(toy_sessions, str(uuid.uuid4()))
        js = running.bus.js
        assert js is not None

        async def later_published() -> bool:
            return bool(await unpublished(toy_sessions) == 0)

        await eventually(later_published, within=10)
        ids = [json.loads(m.data or b"")["id"] for m in await stream_messages(js, STREAM)]
    # The first event may have gone out before the storage was lost; the later one must
    # be in the fresh stream.
    assert ids[-1] == later.id
    assert written.id not in ids or ids == [written.id, later.id]



async def test_an_event_jetstream_refuses_stays_in_the_outbox_with_those_after_it(
        nats: NatsServer, database_url: str,
        toy_sessions: async_sessionmaker[AsyncSession]) -> None:
    """JetStream's answer to each publish decides: a refusal part-way through a batch (here
    a stream that is full and discards new messages) publishes what came before it, and
    keeps that event and the later ones to be published again, in order."""
    settings = toy_settings(nats.url, database_url)
    async with running_events(settings, toy_sessions, relay=False) as running:
        assert await running.bus.wait_connected(within=5)
        js = running.bus.js
        assert js is not None
        config = (await js.stream_info(STREAM)).config
        config.max_msgs, config.discard = 2, DiscardPolicy.NEW
        await js.update_stream(config)
        written = [await write_record(toy_sessions, str(uuid.uuid4())) for _ in range(4)]
        with pytest.raises(PublishIncompleteError) as refused:
            await running.relay.publish_pending()
        assert (refused.value.acked, refused.value.total) == (2, 4)
        assert await unpublished(toy_sessions) == 2
        ids = [json.loads(m.data or b"")["id"] for m in await stream_messages(js, STREAM)]
        assert ids == [event.id for event in written[:2]]
        # Room again: the rest goes out, after the first two.
        config.max_msgs = -1
        await js.update_stream(config)
        assert await running.relay.publish_pending() == 2
        ids = [json.loads(m.data or b"")["id"] for m in await stream_messages(js, STREAM)]
    assert ids == [event.id for event in written]
    assert await unpublished(toy_sessions) == 0
