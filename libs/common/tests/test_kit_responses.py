"""JSON responses the services' routes send: models and stored documents, with the ETag of
the version and the Location of what was created."""

import json

from pydantic import BaseModel

from recovery.common.http import document_response, json_response


class Note(BaseModel):
    id: str
    size: int


def test_a_model_is_sent_as_json_with_its_etag_and_location() -> None:
    response = json_response(Note(id="n-1", size=3), status_code=201, version=4,
                             location="/v1/notes/n-1")
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    assert response.headers["etag"] == '"4"'
    assert response.headers["location"] == "/v1/notes/n-1"
    assert json.loads(response.body) == {"id": "n-1", "size": 3}
    assert response.headers["content-length"] == str(len(response.body))


def test_a_list_of_models_is_a_json_array_without_version_headers() -> None:
    response = json_response([Note(id="a", size=1), Note(id="b", size=2)])
    assert json.loads(response.body) == [{"id": "a", "size": 1}, {"id": "b", "size": 2}]
    assert "etag" not in response.headers and "location" not in response.headers
    assert json.loads(json_response([]).body) == []


def test_a_stored_document_is_sent_as_it_is_with_its_etag() -> None:
    stored = '{"id":"g-1","description":"My own flat"}'
    assert document_response(stored, version=2).body == stored.encode()
    created = document_response({"id": "g-1"}, version=1, status_code=201,
                                location="/v1/goals/g-1")
    assert (created.status_code, created.body) == (201, b'{"id":"g-1"}')
    assert (created.headers["etag"], created.headers["location"]) == ('"1"', "/v1/goals/g-1")
