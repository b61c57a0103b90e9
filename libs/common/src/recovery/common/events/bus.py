"""The service's connection to NATS JetStream, kept alive for the life of the process."""

import asyncio
import contextlib

import nats
import structlog
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import BadRequestError

from recovery.common.settings import Settings

log = structlog.get_logger(__name__)


class EventBus:
    """Connects in the background and never gives up: the service starts without NATS."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client: Client | None = None
        self.js: JetStreamContext | None = None
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.is_connected

    async def _connect_forever(self) -> None:
        delay = 0.2
        while True:
            try:
                self.client = await nats.connect(
                    self.settings.nats_url,
                    name=f"recovery-{self.settings.service}",
                    # nats-py gives up after 60 attempts by default; a service must not.
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    allow_reconnect=True,
                    connect_timeout=2,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                )
                self.js = self.client.jetstream()
                await self.ensure_stream(self.settings.stream_name,
                                         [f"{self.settings.subject_prefix}.>"])
                self.ready.set()
                log.info("nats_connected", url=self.settings.nats_url)
                return
            except (OSError, TimeoutError, nats.errors.Error) as exc:
                log.warning("nats_connect_failed", error=type(exc).__name__, retry_in=delay)
                if self.client is not None:
                    with contextlib.suppress(Exception):
                        await self.client.close()
                    self.client = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def ensure_stream(self, name: str, subjects: list[str]) -> None:
        """Create the stream, or bring its subjects up to date, with file storage."""
        assert self.js is not None
        config = StreamConfig(name=name, subjects=subjects, storage=StorageType.FILE,
                              duplicate_window=120.0)
        try:
            await self.js.add_stream(config)
        except BadRequestError:
            await self.js.update_stream(config)

    async def _on_error(self, exc: Exception) -> None:
        log.warning("nats_error", error=type(exc).__name__)

    async def _on_disconnected(self) -> None:
        log.warning("nats_disconnected")

    async def _on_reconnected(self) -> None:
        log.info("nats_reconnected")
        # A restarted server with fresh storage has lost the stream; provision it again.
        with contextlib.suppress(Exception):
            await self.ensure_stream(self.settings.stream_name,
                                     [f"{self.settings.subject_prefix}.>"])

    def start(self) -> None:
        self._task = asyncio.create_task(self._connect_forever(), name="nats-connect")

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.drain()
