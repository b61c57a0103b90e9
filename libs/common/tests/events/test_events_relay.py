"""The outbox relay against a real nats-server, on SQLite and PostgreSQL."""

import asyncio
import contextlib
import json
import uuid
from datetime import timedelta

import pytest
from eventkit_toy import (
    CREATED,
    OUTBOX,
    STREAM,
    UPDATED,
    create_toy_schema,
    eventually,
    every_publish,
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

from recovery.common.db import create_engine, session_factory
from recovery.common.events.outbox import OutboxEvent
from recovery.common.events.relay import PublishIncompleteError
from recovery.common.testing.processes import NatsServer


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


async def test_the_running_relay_publishes_each_event_once_and_marks_every_one(
        nats: NatsServer, database_url: str,
        toy_sessions: async_sessionmaker[AsyncSession]) -> None:
    """Rows are marked in the transaction that published them, so none is sent again
    (JetStream would hide a second copy; a plain subscription sees every one)."""
    settings = toy_settings(nats.url, database_url, outbox_batch_size=50)
    async with every_publish(nats.url) as seen, running_events(settings, toy_sessions) as running:
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
        await asyncio.sleep(0.3)  # a second copy would have arrived by now
        assert await unpublished(toy_sessions) == 0
        assert running.relay.published == 300
    assert ids == [event.id for event in written]
    assert [m.headers and m.headers["Nats-Msg-Id"] for m in seen] == ids


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


async def test_two_replicas_relays_publish_every_row_once_keeping_each_records_order(
        nats: NatsServer, postgres_url: str) -> None:
    """Two replicas of a service, each with its engine, NATS connection and relay, share one
    PostgreSQL outbox while changes are written through both: one relay publishes at a time
    and marks what it published before the other reads, so every row goes out once (counted
    on a plain subscription, which JetStream's dedupe cannot hide) and each record's events
    reach the stream in the order they were written."""
    records, events_per_record = 8, 40
    settings = toy_settings(nats.url, postgres_url, outbox_batch_size=20,
                            outbox_poll_seconds=0.05)
    replicas, sessions_of = [], []
    async with every_publish(nats.url) as seen, contextlib.AsyncExitStack() as stack:
        for _ in range(2):
            engine = create_engine(postgres_url)
            stack.push_async_callback(engine.dispose)
            sessions_of.append(session_factory(engine))
            if len(sessions_of) == 1:
                await create_toy_schema(engine)
            replicas.append(await stack.enter_async_context(
                running_events(settings, sessions_of[-1])))
        toy_sessions = sessions_of[0]
        for replica in replicas:
            assert await replica.bus.wait_connected(within=5)

        async def write_history(record_id: str) -> None:
            # A record's changes one after another, each through either replica.
            for number in range(events_per_record):
                await write_record(sessions_of[number % 2], record_id,
                                   CREATED if number == 0 else UPDATED)

        await asyncio.gather(*(write_history(str(uuid.uuid4())) for _ in range(records)))
        total = records * events_per_record
        js = replicas[0].bus.js
        assert js is not None

        async def all_published() -> bool:
            return (await unpublished(toy_sessions) == 0
                    and len(await stream_messages(js, STREAM)) == total)

        await eventually(all_published, within=20)
        await asyncio.sleep(0.3)  # a second copy would have arrived by now
        in_stream = await stream_messages(js, STREAM)
        published_by = [replica.relay.published for replica in replicas]
    async with toy_sessions() as session:
        connection = await session.connection()
        rows = await connection.execute(select(OUTBOX.c.event_id, OUTBOX.c.position))
        position = {event_id: place for event_id, place in rows.all()}
    sent = [m.headers and m.headers["Nats-Msg-Id"] for m in seen]
    assert len(sent) == total and set(sent) == set(position)
    assert sum(published_by) == total and all(published_by)  # both relays took turns
    by_record: dict[str, list[int]] = {}
    for message in in_stream:
        body = json.loads(message.data or b"")
        by_record.setdefault(body["subject"], []).append(position[body["id"]])
    assert len(by_record) == records
    assert all(positions == sorted(positions) for positions in by_record.values())


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
