"""The NATS connection: starts without NATS, reconnects forever, and gates readiness."""

import asyncio
from pathlib import Path

import nats as nats_py
from eventkit_toy import STREAM, eventually, toy_settings
from fastapi import FastAPI
from nats.aio.client import DEFAULT_MAX_RECONNECT_ATTEMPTS
from nats.js.api import StorageType, StreamConfig

from recovery.common.app import create_service_app
from recovery.common.dev_issuer import DevIssuer
from recovery.common.events.bus import EventBus
from recovery.common.settings import Settings
from recovery.common.testing.plugin import running_service
from recovery.common.testing.processes import NatsServer

TOY_MIGRATIONS = Path(__file__).parent / "toy_migrations"


async def test_a_service_starts_while_nats_is_down_and_connects_once_it_is_up(
        nats: NatsServer) -> None:
    nats.stop()
    bus = EventBus(toy_settings(nats.url, "sqlite+aiosqlite://"), reconnect_wait=0.05)
    bus.start()
    try:
        await asyncio.sleep(0.5)
        assert not bus.connected
        assert bus.failed_attempts > 0
        nats.start()
        assert await bus.wait_connected(within=5)
        assert bus.js is not None
        info = await bus.js.stream_info(STREAM)
        assert info.config.subjects == ["recovery.toy.>"]
    finally:
        await bus.stop()


async def test_the_client_reconnects_after_more_failed_attempts_than_nats_py_allows(
        nats: NatsServer) -> None:
    bus = EventBus(toy_settings(nats.url, "sqlite+aiosqlite://"), reconnect_wait=0.01)
    bus.start()
    try:
        assert await bus.wait_connected(within=5)
        first_generation = bus.generation
        nats.stop()

        async def beyond_the_default() -> bool:
            return bus.failed_attempts > DEFAULT_MAX_RECONNECT_ATTEMPTS + 10

        await eventually(beyond_the_default, within=20)
        assert not bus.connected
        nats.start()
        assert await bus.wait_connected(within=5)

        async def reconnected() -> bool:
            return bus.connected and bus.generation > first_generation

        await eventually(reconnected)
        assert bus.client is not None and not bus.client.is_closed
        assert bus.js is not None
        await bus.js.publish("recovery.toy.record.created", b"{}")
    finally:
        await bus.stop()


async def test_an_existing_stream_keeps_its_operator_settings_and_gains_missing_subjects(
        nats: NatsServer) -> None:
    # The operator's stream exists before any service connects (a fresh server, so nothing
    # is deleted first: JetStream removes a deleted stream's files in the background, and
    # re-creating it at once can fail with "error creating store for stream").
    operator = await nats_py.connect(nats.url)
    try:
        js = operator.jetstream()
        await js.add_stream(StreamConfig(
            name=STREAM, subjects=["recovery.elsewhere.>"], storage=StorageType.FILE,
            max_msgs=1000, description="tuned by operations"))
        service = EventBus(toy_settings(nats.url, "sqlite+aiosqlite://"))
        service.start()
        try:
            assert await service.wait_connected(within=5)
            config = (await js.stream_info(STREAM)).config
        finally:
            await service.stop()
    finally:
        await operator.close()
    assert config.subjects == ["recovery.elsewhere.>", "recovery.toy.>"]
    assert config.max_msgs == 1000
    assert config.description == "tuned by operations"


async def test_stopping_a_bus_that_never_connected_returns_promptly() -> None:
    bus = EventBus(toy_settings("nats://127.0.0.1:1", "sqlite+aiosqlite://"),
                   reconnect_wait=0.001)
    bus.start()
    await asyncio.sleep(0.2)
    await asyncio.wait_for(bus.stop(), timeout=5)
    assert not bus.connected


async def test_readyz_answers_503_until_nats_is_connected_and_200_after(
        nats: NatsServer, database_url: str, dev_issuer: DevIssuer) -> None:
    nats.stop()
    settings = toy_settings(nats.url, database_url, jwks_file=str(dev_issuer.jwks_path))

    def toy_app(settings: Settings) -> FastAPI:
        return create_service_app(settings=settings, title="toy", description="events tests",
                                  routers=[], migrations_dir=TOY_MIGRATIONS)

    async with running_service(toy_app, settings, TOY_MIGRATIONS) as client:
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["nats"] != "ok"
        assert response.json()["checks"]["database"] == "ok"
        nats.start()

        async def ready() -> bool:
            return (await client.get("/readyz")).status_code == 200

        await eventually(ready, within=10)


async def test_in_a_cluster_the_stream_is_kept_by_as_many_servers_as_configured() -> None:
    import nats.errors

    from recovery.common.testing.processes import NatsCluster

    cluster = NatsCluster()
    cluster.start()
    client = None
    try:
        client = await nats_py.connect(cluster.url)
        js = client.jetstream()

        async def jetstream_ready() -> bool:
            try:
                await js.account_info()
            except (nats.errors.Error, nats.js.errors.Error):
                return False
            return True

        await eventually(jetstream_ready, within=30)
        # A stream made by an earlier release, kept by one server only.
        await js.add_stream(StreamConfig(name=STREAM, subjects=["recovery.toy.>"],
                                         storage=StorageType.FILE, num_replicas=1))
        bus = EventBus(toy_settings(cluster.url, "sqlite+aiosqlite://", stream_replicas=3))
        bus.start()
        try:
            assert await bus.wait_connected(within=20)
            info = await js.stream_info(STREAM)
            assert info.config.num_replicas == 3
            assert info.config.subjects == ["recovery.toy.>"]
            # A new stream is made with three copies from the start.
            await bus.ensure_stream("TOYDEAD", ["recovery.toydead.>"])
            assert (await js.stream_info("TOYDEAD")).config.num_replicas == 3
            # Fewer copies wanted than the stream has: an operator's choice is kept.
            bus.settings.stream_replicas = 1
            await bus.ensure_stream(STREAM, ["recovery.toy.>"])
            assert (await js.stream_info(STREAM)).config.num_replicas == 3
        finally:
            await bus.stop()
    finally:
        if client is not None:
            await client.close()
        cluster.stop()
