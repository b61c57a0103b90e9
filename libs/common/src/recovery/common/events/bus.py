"""The service's connection to NATS JetStream, kept alive for the life of the process.

It connects in the background (a service starts, and reports not ready, while NATS is down),
reconnects forever, and re-provisions its stream after a server restart.
"""

import asyncio
import contextlib
from collections.abc import Callable

import nats
import structlog
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from recovery.common.events.tasks import cancel_and_wait
from recovery.common.settings import Settings

log = structlog.get_logger(__name__)

#: JetStream drops a message whose ``Nats-Msg-Id`` it has seen within this window.
DUPLICATE_WINDOW_SECONDS = 120.0


def stream_subjects(stream: str) -> list[str]:
    """The subjects of a service's stream by convention: ``CRISIS_PLANS`` holds
    ``recovery.crisis-plans.>``."""
    return [f"recovery.{stream.lower().replace('_', '-')}.>"]


class EventBus:
    """One NATS connection per process; never gives up, so the service outlives NATS outages.

    ``generation`` grows on every (re)connection: consumers compare it to know that their
    pull subscriptions must be rebuilt.
    """

    def __init__(self, settings: Settings, *, reconnect_wait: float = 0.5,
                 connect_timeout: float = 2.0, max_backoff: float = 5.0) -> None:
        self.settings = settings
        self.client: Client | None = None
        self.js: JetStreamContext | None = None
        self.generation = 0
        #: Failed connection attempts since the last successful one.
        self.failed_attempts = 0
        self.ready = asyncio.Event()
        self._reconnect_wait = reconnect_wait
        self._connect_timeout = connect_timeout
        self._max_backoff = max_backoff
        self._listeners: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._after_reconnect: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.is_connected

    def on_connected(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every connection and reconnection (e.g. to wake the relay)."""
        self._listeners.append(listener)

    async def wait_connected(self, within: float | None = None) -> bool:
        """Wait until connected; False when ``within`` seconds pass first."""
        try:
            await asyncio.wait_for(self.ready.wait(), within)
        except TimeoutError:
            return False
        return True

    async def _connect_forever(self) -> None:
        delay = self._reconnect_wait
        while not self._stopping:
            try:
                client = await nats.connect(
                    self.settings.nats_url,
                    name=f"recovery-{self.settings.service}",
                    # nats-py gives up after 60 attempts by default; a service must not.
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=self._reconnect_wait,
                    allow_reconnect=True,
                    connect_timeout=self._connect_timeout,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                    closed_cb=self._on_closed,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failed_attempts += 1
                log.warning("nats_connect_failed", error=type(exc).__name__, retry_in=delay,
                            attempts=self.failed_attempts)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_backoff)
                continue
            self.client = client
            self.js = client.jetstream()
            await self._provision_own_stream()
            self._mark_connected()
            log.info("nats_connected", url=self.settings.nats_url)
            return

    def _mark_connected(self) -> None:
        self.failed_attempts = 0
        self.generation += 1
        self.ready.set()
        for listener in self._listeners:
            listener()

    async def ensure_stream(self, name: str, subjects: list[str]) -> None:
        """Create the stream with file storage and ``stream_replicas`` copies, or bring an
        existing one up to them: missing subjects added, fewer copies raised.

        An existing stream keeps every other setting (and more copies, if an operator gave
        it more), so operators may tune it without a service undoing that at its next start.
        """
        assert self.js is not None
        replicas = self.settings.stream_replicas
        config = StreamConfig(name=name, subjects=subjects, storage=StorageType.FILE,
                              duplicate_window=DUPLICATE_WINDOW_SECONDS, num_replicas=replicas)
        try:
            await self.js.add_stream(config)
        except BadRequestError:
            existing = (await self.js.stream_info(name)).config
            held = set(existing.subjects or [])
            changed = not held.issuperset(subjects) or (existing.num_replicas or 1) < replicas
            if changed:
                existing.subjects = sorted(held | set(subjects))
                existing.num_replicas = max(existing.num_replicas or 1, replicas)
                await self.js.update_stream(existing)
                log.info("nats_stream_updated", stream=name, replicas=existing.num_replicas)

    async def ensure_stream_exists(self, name: str, subjects: list[str]) -> None:
        """Create the stream only when it is missing, leaving its owner's settings alone."""
        assert self.js is not None
        try:
            await self.js.stream_info(name)
        except NotFoundError:
            await self.ensure_stream(name, subjects)

    async def _provision_own_stream(self) -> None:
        # A failure here is not fatal: the relay provisions again when a publish finds no
        # stream, and every reconnection tries once more.
        try:
            await self.ensure_stream(self.settings.stream_name,
                                     [f"{self.settings.subject_prefix}.>"])
        except Exception as exc:
            log.warning("nats_stream_provisioning_failed", stream=self.settings.stream_name,
                        error=type(exc).__name__)

    async def provision_own_stream(self) -> None:
        """Provision this service's stream again (after a server lost its storage)."""
        if self.js is not None and self.connected:
            await self._provision_own_stream()

    async def _on_error(self, exc: Exception) -> None:
        if isinstance(exc, OSError | TimeoutError | nats.errors.NoServersError):
            self.failed_attempts += 1
            # Attempts 1, 2, 4, 8...: an outage is visible without flooding the log.
            if self.failed_attempts & (self.failed_attempts - 1):
                return
            log.warning("nats_unreachable", error=type(exc).__name__,
                        attempts=self.failed_attempts)
            return
        log.warning("nats_error", error=type(exc).__name__)

    async def _on_disconnected(self) -> None:
        self.ready.clear()
        log.warning("nats_disconnected")

    async def _on_reconnected(self) -> None:
        log.info("nats_reconnected", attempts=self.failed_attempts)
        # Runs apart from nats-py's reconnect task, which must not wait on JetStream requests.
        self._after_reconnect = asyncio.create_task(self._reprovision(), name="nats-reprovision")

    async def _reprovision(self) -> None:
        # A restarted server with fresh storage has lost the stream; provision it again.
        await self._provision_own_stream()
        if self.connected:
            self._mark_connected()

    async def _on_closed(self) -> None:
        self.ready.clear()
        if self._stopping:
            return
        # Only reached if the client gave up despite unlimited reconnects: start afresh.
        log.warning("nats_connection_closed")
        self.client = None
        self.js = None
        self._task = asyncio.create_task(self._connect_forever(), name="nats-connect")

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._connect_forever(), name="nats-connect")

    async def stop(self) -> None:
        self._stopping = True
        await cancel_and_wait(self._task)
        await cancel_and_wait(self._after_reconnect)
        client, self.client, self.js = self.client, None, None
        self.ready.clear()
        if client is None or client.is_closed:
            return
        # Drain flushes what is buffered; a connection that is down is simply closed.
        try:
            if client.is_connected:
                await asyncio.wait_for(client.drain(), timeout=5)
        except Exception as exc:
            log.warning("nats_drain_failed", error=type(exc).__name__)
        finally:
            with contextlib.suppress(Exception):
                await client.close()
