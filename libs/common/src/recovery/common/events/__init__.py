"""Events: CloudEvents on NATS JetStream through a transactional outbox."""

from recovery.common.events.consumer import EventHandler, ProcessedEvent
from recovery.common.events.envelope import CloudEvent
from recovery.common.events.outbox import OutboxEvent, record_event

__all__ = ["CloudEvent", "EventHandler", "OutboxEvent", "ProcessedEvent", "record_event"]
