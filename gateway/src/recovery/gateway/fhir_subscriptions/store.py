"""Subscriptions in a JetStream key-value bucket, the one state every gateway replica shares.

Each replica watches the bucket and keeps what it holds in memory to match events against;
every change (a number given to an event, a heartbeat claimed, a status) is written with
compare-and-set on the entry's revision, re-read and retried when another replica wrote
first, so no two replicas give out the same number or send the same heartbeat.
"""

import asyncio
import contextlib
import time
from collections.abc import Callable

import nats
import structlog
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import (
    BadRequestError,
    KeyDeletedError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
)
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from recovery.common.events.bus import EventBus
from recovery.common.events.tasks import cancel_and_wait
from recovery.gateway.fhir_subscriptions.models import StoredSubscription

log = structlog.get_logger(__name__)

BUCKET = "FHIR_SUBSCRIPTIONS"
KEY_PREFIX = "subscription."
#: How long an event may wait for this replica's copy to catch up with the bucket.
CATCH_UP_SECONDS = 2.0


class StoreUnavailableError(Exception):
    """NATS, or the bucket, cannot be reached just now."""


def key_of(subscription_id: str) -> str:
    return KEY_PREFIX + subscription_id


class SubscriptionStore:
    """The bucket, and this replica's copy of it kept current by a watch."""

    def __init__(self, bus: EventBus, replicas: int) -> None:
        self.bus = bus
        self.replicas = replicas
        self.kv: KeyValue | None = None
        #: Every subscription, as this replica last saw it.
        self.held: dict[str, StoredSubscription] = {}
        self._seen_revision = 0
        self._initialised = asyncio.Event()
        #: Set when the copy did not catch up in time: the watch is made afresh.
        self._stale = False
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self._initialised.is_set() and self.bus.connected

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch_forever(), name="fhir-subscriptions-watch")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    async def wait_ready(self, within: float) -> bool:
        try:
            await asyncio.wait_for(self._initialised.wait(), within)
        except TimeoutError:
            return False
        return True

    async def _open_bucket(self) -> KeyValue:
        js = self.bus.js
        assert js is not None
        config = KeyValueConfig(bucket=BUCKET, history=1, replicas=self.replicas,
                                storage=StorageType.FILE,
                                description="FHIR subscriptions of the gateway")
        try:
            return await js.create_key_value(config)
        except BadRequestError:
            # It exists with other settings (an operator's): keep them, as streams are kept.
            return await js.key_value(BUCKET)

    async def _watch_forever(self) -> None:
        """Open the bucket and follow it; after a reconnection or a failure, afresh."""
        while True:
            await self.bus.ready.wait()
            generation = self.bus.generation
            try:
                self.kv = await self._open_bucket()
                watcher = await self.kv.watch(KEY_PREFIX + ">")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("fhir_subscriptions_watch_failed", error=type(exc).__name__)
                await asyncio.sleep(0.5)
                continue
            self._initialised.clear()
            self.held, self._seen_revision, self._stale = {}, 0, False
            try:
                while self.bus.generation == generation and not self._stale:
                    try:
                        # nats-py leaves its KeyWatcher's methods untyped.
                        entry = await watcher.updates(timeout=1.0)  # type: ignore[no-untyped-call]
                    except nats.errors.TimeoutError:
                        continue
                    if entry is None:  # the bucket as it was is all read
                        self._initialised.set()
                        continue
                    self._take(entry)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("fhir_subscriptions_watch_failed", error=type(exc).__name__)
                await asyncio.sleep(0.5)
            finally:
                self._initialised.clear()
                with contextlib.suppress(Exception):
                    await watcher.stop()  # type: ignore[no-untyped-call]

    def _take(self, entry: KeyValue.Entry) -> None:
        subscription_id = entry.key.removeprefix(KEY_PREFIX)
        if entry.operation in (KV_DEL, KV_PURGE) or not entry.value:
            self.held.pop(subscription_id, None)
        else:
            try:
                self.held[subscription_id] = StoredSubscription.decoded(entry.value)
            except ValueError:
                log.warning("fhir_subscription_unreadable", subscription=subscription_id)
        self._seen_revision = max(self._seen_revision, entry.revision or 0)

    async def caught_up(self) -> None:
        """Wait until this replica has seen every change the bucket holds now, so that a
        subscription made (on any replica) before an event is handled is matched to it."""
        bucket = self._bucket()
        try:
            last = (await bucket.status()).stream_info.state.last_seq
        except Exception as exc:
            raise StoreUnavailableError(type(exc).__name__) from exc
        deadline = time.monotonic() + CATCH_UP_SECONDS
        while self._seen_revision < last or not self._initialised.is_set():
            if time.monotonic() > deadline:
                self._stale = True
                raise StoreUnavailableError("the watch fell behind")
            await asyncio.sleep(0.005)

    def _bucket(self) -> KeyValue:
        if self.kv is None or not self.bus.connected:
            raise StoreUnavailableError("not connected")
        return self.kv

    async def read(self, subscription_id: str) -> tuple[StoredSubscription, int] | None:
        """The subscription and its revision, or None when there is none."""
        bucket = self._bucket()
        try:
            entry = await bucket.get(key_of(subscription_id))
        except (KeyNotFoundError, KeyDeletedError):
            return None
        except Exception as exc:
            raise StoreUnavailableError(type(exc).__name__) from exc
        if not entry.value:
            return None
        return StoredSubscription.decoded(entry.value), entry.revision or 0

    async def create(self, subscription: StoredSubscription) -> None:
        try:
            await self._bucket().create(key_of(subscription.id), subscription.encoded())
        except StoreUnavailableError:
            raise
        except Exception as exc:
            raise StoreUnavailableError(type(exc).__name__) from exc
        self.held[subscription.id] = subscription

    async def change(self, subscription_id: str,
                     change: Callable[[StoredSubscription], StoredSubscription | None]
                     ) -> StoredSubscription | None:
        """Apply ``change`` to the subscription with compare-and-set, again on a fresh read
        while another writer got there first. None when it is gone or ``change`` declines
        (returns None); otherwise what was written."""
        while True:
            found = await self.read(subscription_id)
            if found is None:
                return None
            current, revision = found
            changed = change(current)
            if changed is None:
                return None
            try:
                await self._bucket().update(key_of(subscription_id), changed.encoded(),
                                            last=revision)
            except KeyWrongLastSequenceError:
                continue
            except StoreUnavailableError:
                raise
            except Exception as exc:
                raise StoreUnavailableError(type(exc).__name__) from exc
            return changed

    async def delete(self, subscription_id: str) -> None:
        try:
            await self._bucket().delete(key_of(subscription_id))
        except StoreUnavailableError:
            raise
        except Exception as exc:
            raise StoreUnavailableError(type(exc).__name__) from exc
        self.held.pop(subscription_id, None)
