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


def encoded_json_response(body: str, *, status_code: int = 200, version: int | None = None,
                          location: str | None = None) -> Response:
    """JSON already encoded (a stored document, a model dumped once), with its ETag and
    Location when given."""
    headers: dict[str, str] = {}
    if version is not None:
        headers["ETag"] = etag(version)
    if location is not None:
        headers["Location"] = location
    return Response(body, status_code=status_code, headers=headers, media_type=JSON)


def json_response(model: BaseModel | Sequence[BaseModel], *, status_code: int = 200,
                  version: int | None = None, location: str | None = None) -> Response:
    """A model (or a list of them) as JSON, with its ETag and Location when given."""
    body = (model.model_dump_json() if isinstance(model, BaseModel)
            else "[" + ",".join(item.model_dump_json() for item in model) + "]")
    return encoded_json_response(body, status_code=status_code, version=version,
                                 location=location)


def document_response(document: dict[str, Any] | str, *, version: int, status_code: int = 200,
                      location: str | None = None) -> Response:
    """A record's stored public document (written with the change, so not re-validated)."""
    body = document if isinstance(document, str) else json_text(document)
    return encoded_json_response(body, status_code=status_code, version=version,
                                 location=location)
