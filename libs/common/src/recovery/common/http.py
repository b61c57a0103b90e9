"""JSON responses and request parameters every service's routes share: ETag, Location,
stored documents handed out as they are, If-Match and paging parameters."""

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Header, Query, Response
from pydantic import BaseModel

from recovery.common.db import json_text
from recovery.common.versioning import etag

IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=200,
                                       description="The ETag of the version being changed")]
Cursor = Annotated[str | None, Query(max_length=500, description="next_cursor of the last page")]
Limit = Annotated[int | None, Query(ge=1, le=1000, description="Page size (capped)")]

JSON = "application/json"
_JSON_BYTES = JSON.encode("latin-1")


class EncodedJSONResponse(Response):
    """JSON already encoded, with its headers (ETag, Location, length, type) laid out
    directly, byte for byte as ``Response`` lays them out: its constructor, general over
    media types and charsets, cost an answer a few microseconds more."""

    media_type = JSON

    def __init__(self, body: str, *, status_code: int = 200, version: int | None = None,
                 location: str | None = None) -> None:
        self.status_code = status_code
        self.background = None
        self.body = encoded = body.encode()
        raw: list[tuple[bytes, bytes]] = []
        if version is not None:
            raw.append((b"etag", etag(version).encode("latin-1")))
        if location is not None:
            raw.append((b"location", location.encode("latin-1")))
        raw += [(b"content-length", str(len(encoded)).encode("latin-1")),
                (b"content-type", _JSON_BYTES)]
        self.raw_headers = raw


def json_response(model: BaseModel | Sequence[BaseModel], *, status_code: int = 200,
                  version: int | None = None, location: str | None = None) -> Response:
    """A model (or a list of them) as JSON, with its ETag and Location when given."""
    body = (model.model_dump_json() if isinstance(model, BaseModel)
            else "[" + ",".join(item.model_dump_json() for item in model) + "]")
    return EncodedJSONResponse(body, status_code=status_code, version=version,
                               location=location)


def document_response(document: dict[str, Any] | str, *, version: int, status_code: int = 200,
                      location: str | None = None) -> Response:
    """A record's stored public document (written with the change, so not re-validated)."""
    body = document if isinstance(document, str) else json_text(document)
    return EncodedJSONResponse(body, status_code=status_code, version=version,
                               location=location)
