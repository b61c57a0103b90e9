"""Durable consumers against a real nats-server, on SQLite and PostgreSQL: each event has its
effect once, failures are retried with back-off and then dead-lettered, restarts survived."""

import asyncio
import time
import uuid

from eventkit_toy import (
    CREATED,
    PROCESSED,
    STREAM,
    Attempts,
    count_rows,
    effect_handler,
    effects_by_record,
    eventually,
    running_events,
    stream_messages,
    toy_effect,
    toy_settings,
    write_record,
)
from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from recovery.common.db import create_engine, session_factory
from recovery.common.events.bus import EventBus
from recovery.common.events.consumer import DEADLETTER_STREAM, ConsumerRunner
from recovery.common.events.envelope import CloudEvent
from recovery.common.testing.processes import NatsServer

DURABLE = "toy-effects"


async def all_handled_once(sessions: async_sessionmaker[AsyncSession],
                           record_ids: list[str]) -> bool:
    effects = await effects_by_record(sessions)
    return all(effects.get(record_id) == 1 for record_id in record_ids)


async def settled(js: JetStreamContext, durable: str = DURABLE) -> bool:
    """Nothing left to deliver and nothing delivered but unacknowledged."""
    info = await js.consumer_info(STREAM, durable)
    return bool(info.num_pending == 0 and info.num_ack_pending == 0)


async def test_each_event_is_handled_once_and_acknowledged(
        nats: NatsServer, database_url: str,
        toy_sessions: async_sessionmaker[AsyncSession]) -> None:
    settings = toy_settings(nats.url, database_url)
    attempts = Attempts(times={})
    async with running_events(settings, toy_sessions,
                              [effect_handler(DURABLE, attempts)]) as running:
        assert await running.bus.wait_connected(within=5)
        record_ids = [str(uuid.uuid4()) for _ in range(5)]
        for record_id in record_ids:
            await write_record(toy_sessions, record_id)
        await eventually(lambda: all_handled_once(toy_sessions, record_ids))
        js = running.bus.js
        assert js is not None
        await eventually(lambda: settled(js))
    assert await count_rows(toy_sessions, PROCESSED) == 5
    assert await effects_by_record(toy_sessions) == dict.fromkeys(record_ids, 1)


async def test_a_duplicate_delivery_past_the_dedupe_window_has_one_effect(
        nats: NatsServer, database_url: str,
        toy_sessions: async_sessionmaker[AsyncSession]) -> None:
    """The same event published twice with different message ids (as after the 2-minute
    dedupe window) reaches the consumer twice; its effect happens once, both are acked."""
    settings = toy_settings(nats.url, database_url)
    attempts = Attempts(times={})
    async with running_events(settings, toy_sessions,
                              [effect_handler(DURABLE, attempts)], relay=False) as running:
        assert await running.bus.wait_connected(within=5)
        js = running.bus.js
        assert js is not None
        event = CloudEvent(source="toy", type=CREATED, subject=str(uuid.uuid4()))
        await js.publish(CREATED, event.to_json(), headers={"Nats-Msg-Id": "first"})
        await js.publish(CREATED, event.to_json(), headers={"Nats-Msg-Id": "second"})

        async def both_acked() -> bool:
            info = await js.consumer_info(STREAM, DURABLE)
            return info.ack_floor is not None and info.ack_floor.stream_seq == 2

        await eventually(both_acked)
    assert await effects_by_record(toy_sessions) == {event.subject: 1}
    assert attempts.count(event.subject) == 1


async def test_a_failing_handler_is_retried_with_back_off_then_dead_lettered(
        nats: NatsServer, database_url: str,
        toy_sessions: async_sessionmaker[AsyncSession]) -> None:
    settings = toy_settings(nats.url, database_url, consumer_max_deliver=3,
                            consumer_backoff_seconds=[0.3, 0.6])
    attempts = Attempts(times={}, always_fail=True)
    async with running_events(settings, toy_sessions,
                              [effect_handler(DURABLE, attempts)]) as running:
        assert await running.bus.wait_connected(within=5)
        record_id = str(uuid.uuid4())
        event = await write_record(toy_sessions, record_id)
        js = running.bus.js
        assert js is not None

        async def dead_lettered() -> bool:
            info = await js.stream_info(DEADLETTER_STREAM)
            return bool(info.state.messages == 1)

        await eventually(dead_lettered, within=10)
        await asyncio.sleep(1.0)  # a poison message would be back by now
        dead = await stream_messages(js, DEADLETTER_STREAM)
        assert await settled(js)
    times = attempts.times[record_id]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.3 - 0.05
    assert times[2] - times[1] >= 0.6 - 0.05
    assert len(dead) == 1
    assert dead[0].subject == f"recovery.deadletter.{DURABLE}"
    assert CloudEvent.from_json(dead[0].data or b"").id == event.id
    headers = dead[0].headers or {}
    assert headers["Recovery-Consumer"] == DURABLE
    assert headers["Recovery-Original-Subject"] == CREATED
    assert headers["Recovery-Deliveries"] == "3"
    assert headers["Recovery-Failure"] == "RuntimeError"
    # Every failed attempt was rolled back: no effect and nothing marked processed.
    assert await count_rows(toy_sessions, toy_effect) == 0
    assert await count_rows(toy_sessions, PROCESSED) == 0


async def test_a_handler_that_fails_once_has_its_effect_exactly_once(
        nats: NatsServer, database_url: str,
        toy_sessions: async_sessionmaker[AsyncSession]) -> None:
    settings = toy_settings(nats.url, database_url, consumer_backoff_seconds=[0.1])
    attempts = Attempts(times={}, failures_before_success=1)
    async with running_events(settings, toy_sessions,
                              [effect_handler(DURABLE, attempts)]) as running:
        assert await running.bus.wait_connected(within=5)
        record_id = str(uuid.uuid4())
        await write_record(toy_sessions, record_id)
        await eventually(lambda: all_handled_once(toy_sessions, [record_id]))
        js = running.bus.js
        assert js is not None
        await eventually(lambda: settled(js))
        assert (await js.stream_info(DEADLETTER_STREAM)).state.messages == 0
    assert attempts.count(record_id) == 2
    assert await effects_by_record(toy_sessions) == {record_id: 1}


async def test_a_poisoned_event_in_a_batch_neither_blocks_nor_undoes_the_others(
        nats: NatsServer, database_url: str,
        toy_sessions: async_sessionmaker[AsyncSession]) -> None:
    """Events waiting together are handled in one transaction; the one that fails is
    retried alone and dead-lettered, the others have their effects once."""
    settings = toy_settings(nats.url, database_url, consumer_max_deliver=2,
                            consumer_backoff_seconds=[0.1])
    record_ids = [str(uuid.uuid4()) for _ in range(20)]
    poisoned = record_ids[7]
    attempts = Attempts(times={}, poisoned=frozenset({poisoned}))
    async with running_events(settings, toy_sessions, relay=False) as running:
        assert await running.bus.wait_connected(within=5)
        js = running.bus.js
        assert js is not None
        for record_id in record_ids:  # all in the stream before the consumer starts
            event = CloudEvent(source="toy", type=CREATED, subject=record_id)
            await js.publish(CREATED, event.to_json())
        consumers = ConsumerRunner(running.bus, toy_sessions, settings,
                                   [effect_handler(DURABLE, attempts)], fetch_seconds=0.3)
        consumers.start()
        try:
            healthy = [r for r in record_ids if r != poisoned]
            await eventually(lambda: all_handled_once(toy_sessions, healthy))

            async def dead_lettered() -> bool:
                info = await js.stream_info(DEADLETTER_STREAM)
                return bool(info.state.messages == 1)

            await eventually(dead_lettered)
            await eventually(lambda: settled(js))
        finally:
            await consumers.stop()
    assert await effects_by_record(toy_sessions) == dict.fromkeys(healthy, 1)
    assert attempts.count(poisoned) == 2
    assert all(attempts.count(r) <= 2 for r in healthy)


async def test_a_database_outage_is_waited_out_without_using_up_attempts(
        nats: NatsServer, database_url: str,
        toy_sessions: async_sessionmaker[AsyncSession]) -> None:
    settings = toy_settings(nats.url, database_url, consumer_max_deliver=2)
    attempts = Attempts(times={})
    async with running_events(settings, toy_sessions,
                              [effect_handler(DURABLE, attempts)]) as running:
        assert await running.bus.wait_connected(within=5)
        attempts.outage_until = time.monotonic() + 1.5
        record_id = str(uuid.uuid4())
        await write_record(toy_sessions, record_id)
        await eventually(lambda: all_handled_once(toy_sessions, [record_id]), within=10)
        js = running.bus.js
        assert js is not None
        await eventually(lambda: settled(js))
        assert (await js.stream_info(DEADLETTER_STREAM)).state.messages == 0
    assert attempts.count(record_id) > settings.consumer_max_deliver
    assert await effects_by_record(toy_sessions) == {record_id: 1}


async def test_a_message_that_is_not_a_cloudevent_is_dead_lettered_at_once(
        nats: NatsServer, database_url: str,
        toy_sessions: async_sessionmaker[AsyncSession]) -> None:
    settings = toy_settings(nats.url, database_url)
    attempts = Attempts(times={})
    async with running_events(settings, toy_sessions,
                              [effect_handler(DURABLE, attempts)], relay=False) as running:
        assert await running.bus.wait_connected(within=5)
        js = running.bus.js
        assert js is not None
        await js.publish(CREATED, b'{"not": "a cloudevent"}')

        async def dead_lettered() -> bool:
            info = await js.stream_info(DEADLETTER_STREAM)
            return bool(info.state.messages == 1)

        await eventually(dead_lettered)
        dead = await stream_messages(js, DEADLETTER_STREAM)
        await eventually(lambda: settled(js))
    assert (dead[0].headers or {})["Recovery-Failure"] == "malformed"
    assert (dead[0].headers or {})["Recovery-Deliveries"] == "1"
    assert attempts.times == {}


async def test_a_consumer_keeps_consuming_after_a_nats_restart(
        nats: NatsServer, database_url: str,
        toy_sessions: async_sessionmaker[AsyncSession]) -> None:
    settings = toy_settings(nats.url, database_url)
    attempts = Attempts(times={})
    async with running_events(settings, toy_sessions,
                              [effect_handler(DURABLE, attempts)]) as running:
        assert await running.bus.wait_connected(within=5)
        before = str(uuid.uuid4())
        await write_record(toy_sessions, before)
        await eventually(lambda: all_handled_once(toy_sessions, [before]))
        written = [before]
        for _ in range(2):
            nats.restart()
            written.append(str(uuid.uuid4()))
            await write_record(toy_sessions, written[-1])
            await eventually(lambda: all_handled_once(toy_sessions, written), within=15)
    assert set((await effects_by_record(toy_sessions)).values()) == {1}
    assert len(await effects_by_record(toy_sessions)) == 3


async def test_events_written_while_nats_is_down_reach_the_consumer_once_each(
        nats: NatsServer, database_url: str,
        toy_sessions: async_sessionmaker[AsyncSession]) -> None:
    settings = toy_settings(nats.url, database_url)
    attempts = Attempts(times={})
    # An ack lost with the connection is redelivered after the ack wait: keep it short.
    async with running_events(settings, toy_sessions, [effect_handler(DURABLE, attempts)],
                              ack_wait_seconds=2.0) as running:
        assert await running.bus.wait_connected(within=5)
        record_ids = [str(uuid.uuid4()) for _ in range(30)]
        for record_id in record_ids[:10]:
            await write_record(toy_sessions, record_id)
        nats.stop()
        for record_id in record_ids[10:]:
            await write_record(toy_sessions, record_id)
        await asyncio.sleep(0.5)
        nats.start()
        await eventually(lambda: all_handled_once(toy_sessions, record_ids), within=15)
        js = running.bus.js
        assert js is not None
        await eventually(lambda: settled(js), within=10)
        assert len(await stream_messages(js, STREAM)) == 30
    assert await effects_by_record(toy_sessions) == dict.fromkeys(record_ids, 1)


async def test_changes_made_through_a_nats_crash_are_in_the_stream_in_order_with_one_effect_each(
        nats: NatsServer, database_url: str,
        toy_sessions: async_sessionmaker[AsyncSession]) -> None:
    settings = toy_settings(nats.url, database_url)
    attempts = Attempts(times={})
    async with running_events(settings, toy_sessions, [effect_handler(DURABLE, attempts)],
                              ack_wait_seconds=2.0) as running:
        assert await running.bus.wait_connected(within=5)
        written = []
        for index in range(90):
            if index == 30:
                nats.crash()
            if index == 60:
                nats.start()
            written.append(await write_record(toy_sessions, str(uuid.uuid4())))
            await asyncio.sleep(0.005)
        record_ids = [event.subject for event in written]
        await eventually(lambda: all_handled_once(toy_sessions, record_ids), within=15)
        js = running.bus.js
        assert js is not None
        await eventually(lambda: settled(js), within=10)
        in_stream = [CloudEvent.from_json(m.data or b"").id
                     for m in await stream_messages(js, STREAM)]
    assert in_stream == [event.id for event in written]
    assert await effects_by_record(toy_sessions) == dict.fromkeys(record_ids, 1)


async def test_a_consumer_rebuilds_its_stream_and_consumer_when_the_server_lost_its_storage(
        nats: NatsServer, database_url: str,
        toy_sessions: async_sessionmaker[AsyncSession]) -> None:
    settings = toy_settings(nats.url, database_url)
    attempts = Attempts(times={})
    async with running_events(settings, toy_sessions,
                              [effect_handler(DURABLE, attempts)]) as running:
        assert await running.bus.wait_connected(within=5)
        before = str(uuid.uuid4())
        await write_record(toy_sessions, before)
        await eventually(lambda: all_handled_once(toy_sessions, [before]))
        nats.restart(lose_storage=True)
        after = str(uuid.uuid4())
        await write_record(toy_sessions, after)
        await eventually(lambda: all_handled_once(toy_sessions, [before, after]), within=15)
        js = running.bus.js
        assert js is not None
        assert (await js.consumer_info(STREAM, DURABLE)).config.durable_name == DURABLE


async def test_a_consumer_deleted_behind_the_runners_back_is_created_again(
        nats: NatsServer, database_url: str,
        toy_sessions: async_sessionmaker[AsyncSession]) -> None:
    settings = toy_settings(nats.url, database_url)
    attempts = Attempts(times={})
    async with running_events(settings, toy_sessions,
                              [effect_handler(DURABLE, attempts)]) as running:
        assert await running.bus.wait_connected(within=5)
        before = str(uuid.uuid4())
        await write_record(toy_sessions, before)
        await eventually(lambda: all_handled_once(toy_sessions, [before]))
        js = running.bus.js
        assert js is not None
        await js.delete_consumer(STREAM, DURABLE)
        after = str(uuid.uuid4())
        await write_record(toy_sessions, after)
        await eventually(lambda: all_handled_once(toy_sessions, [before, after]), within=5)


async def test_two_replicas_of_a_consumer_share_the_work_and_each_event_has_one_effect(
        nats: NatsServer, database_url: str,
        toy_sessions: async_sessionmaker[AsyncSession]) -> None:
    settings = toy_settings(nats.url, database_url)
    attempts = Attempts(times={})
    handler = effect_handler(DURABLE, attempts)
    async with running_events(settings, toy_sessions, [handler]) as running:
        assert await running.bus.wait_connected(within=5)
        replica = ConsumerRunner(running.bus, toy_sessions, settings, [handler],
                                 fetch_batch=4, fetch_seconds=0.3)
        replica.start()
        try:
            record_ids = [str(uuid.uuid4()) for _ in range(60)]
            for record_id in record_ids:
                await write_record(toy_sessions, record_id)
            await eventually(lambda: all_handled_once(toy_sessions, record_ids), within=15)
            js = running.bus.js
            assert js is not None
            await eventually(lambda: settled(js))
        finally:
            await replica.stop()
    assert await effects_by_record(toy_sessions) == dict.fromkeys(record_ids, 1)


def test_back_off_follows_the_configured_delays_and_then_holds_the_last() -> None:
    settings = toy_settings("nats://127.0.0.1:1", "sqlite+aiosqlite:///:memory:",
                            consumer_max_deliver=6, consumer_backoff_seconds=[0.5, 2.0, 10.0])
    sessions = session_factory(create_engine(settings.database_url))
    runner = ConsumerRunner(EventBus(settings), sessions, settings, [])
    assert [runner.backoff_for(attempt) for attempt in range(1, 6)] == [
        0.5, 2.0, 10.0, 10.0, 10.0]
