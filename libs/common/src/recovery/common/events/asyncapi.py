"""The AsyncAPI document as a contract: find the message documented for an event type and
check a received CloudEvent against its payload schema (JSON Schema, via ``jsonschema_rs``).
"""

from functools import cached_property
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml  # type: ignore[import-untyped]

from recovery.common.events.envelope import CloudEvent


class EventContractError(AssertionError):
    """A published event that does not match what the AsyncAPI document promises."""


class AsyncApiDocument:
    """An AsyncAPI 3.0 document whose channel addresses are CloudEvents types."""

    def __init__(self, document: dict[str, Any]) -> None:
        if not str(document.get("asyncapi", "")).startswith("3."):
            raise ValueError("expected an AsyncAPI 3.x document")
        self.document = document
        self._validators: dict[str, Any] = {}

    @classmethod
    def load(cls, path: Path) -> "AsyncApiDocument":
        return cls(yaml.safe_load(path.read_text()))

    def resolve(self, node: Any) -> Any:
        """Follow a local ``$ref`` (``#/a/b``) to what it points at."""
        while isinstance(node, dict) and "$ref" in node:
            target: Any = self.document
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    @cached_property
    def channels_by_address(self) -> dict[str, str]:
        """Channel key for each address (the NATS subject, equal to the event type)."""
        return {channel["address"]: key
                for key, channel in self.document.get("channels", {}).items()
                if isinstance(channel, dict) and channel.get("address")}

    @property
    def event_types(self) -> set[str]:
        return set(self.channels_by_address)

    def message_pointer(self, event_type: str) -> str:
        """JSON pointer to the payload schema of the message sent on this event's channel."""
        key = self.channels_by_address.get(event_type)
        if key is None:
            raise EventContractError(f"{event_type} is not documented in the AsyncAPI document")
        messages = self.document["channels"][key].get("messages") or {}
        if len(messages) != 1:
            raise EventContractError(f"channel {key} should document exactly one message")
        message = next(iter(messages.values()))
        ref = message.get("$ref") if isinstance(message, dict) else None
        if ref is None:
            return f"#/channels/{key}/messages/{next(iter(messages))}/payload"
        # A channel message may point at another reference; follow to the last hop.
        while True:
            target = self.resolve({"$ref": ref})
            if isinstance(target, dict) and "$ref" in target:
                ref = target["$ref"]
                continue
            return f"{ref}/payload"

    def _validator(self, event_type: str) -> Any:
        if event_type not in self._validators:
            pointer = self.message_pointer(event_type)
            # The whole document rides along as the root, so every local $ref resolves.
            root = {**self.document, "$ref": pointer}
            self._validators[event_type] = jsonschema_rs.Draft7Validator(root)
        return self._validators[event_type]

    def errors(self, event: CloudEvent | dict[str, Any]) -> list[str]:
        """Every way this event differs from its documented message; empty when it matches."""
        body = event.model_dump(mode="json") if isinstance(event, CloudEvent) else event
        event_type = str(body.get("type", ""))
        try:
            validator = self._validator(event_type)
        except EventContractError as exc:
            return [str(exc)]
        return [f"{'/'.join(str(p) for p in error.instance_path) or '(event)'}: {error.message}"
                for error in validator.iter_errors(body)]

    def validate(self, event: CloudEvent | dict[str, Any]) -> None:
        """Raise ``EventContractError`` listing every mismatch."""
        problems = self.errors(event)
        if problems:
            raise EventContractError("; ".join(problems))
