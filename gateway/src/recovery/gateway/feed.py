"""The services' events, from NATS, handed to the subscriptions of this process.

One core NATS subscription for the whole process (a gateway keeps no durable state, so an
ephemeral feed is right); each GraphQL subscription registers a bounded queue and a filter.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import structlog
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from recovery.common.events.bus import EventBus
from recovery.common.events.envelope import CloudEvent
from recovery.common.events.tasks import cancel_and_wait
from recovery.common.settings import Settings

log = structlog.get_logger(__name__)

#: Every service's events.
SUBJECTS = "recovery.>"
#: Events a slow subscriber may fall behind by before the oldest are dropped.
QUEUE_SIZE = 256


class FeedBus(EventBus):
    """The kit's ever-reconnecting NATS connection; the gateway publishes nothing, so it
    provisions no stream of its own."""

    async def _provision_own_stream(self) -> None:
        return None


class EventFeed:
    """Fans the services' events out to the subscriptions that want them."""

    def __init__(self, settings: Settings) -> None:
        self.bus = FeedBus(settings)
        self._listeners: set[tuple[Callable[[CloudEvent], bool],
                                   asyncio.Queue[CloudEvent]]] = set()
        self._subscription: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self.bus.connected and self._subscription is not None

    def start(self) -> None:
        self.bus.start()
        self._task = asyncio.create_task(self._subscribe(), name="gateway-feed")

    async def _subscribe(self) -> None:
        await self.bus.wait_connected()
        assert self.bus.client is not None
        # nats-py restores core subscriptions itself after a reconnection.
        self._subscription = await self.bus.client.subscribe(SUBJECTS, cb=self._on_message)
        log.info("event_feed_subscribed", subjects=SUBJECTS)

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
        await self.bus.stop()

    async def _on_message(self, message: Msg) -> None:
        try:
            event = CloudEvent.from_json(message.data)
        except ValueError:
            log.warning("event_feed_unreadable", subject=message.subject)
            return
        for wanted, queue in list(self._listeners):
            if not wanted(event):
                continue
            if queue.full():
                queue.get_nowait()
                log.warning("event_feed_subscriber_behind", type=event.type)
            queue.put_nowait(event)

    async def events(self, wanted: Callable[[CloudEvent], bool]) -> AsyncIterator[CloudEvent]:
        """Events ``wanted`` accepts, from now until the subscriber leaves."""
        queue: asyncio.Queue[CloudEvent] = asyncio.Queue(QUEUE_SIZE)
        listener = (wanted, queue)
        self._listeners.add(listener)
        try:
            while True:
                yield await queue.get()
        finally:
            self._listeners.discard(listener)
