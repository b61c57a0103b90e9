"""Trusted documents: operations registered in a manifest (written by the gateway's command)
run when a request names them by hash, Apollo style or GraphQL-over-HTTP style, over HTTP
and WebSocket; an unknown hash is refused with a typed error, and in trusted-only mode any
free text is refused."""

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.plugin import TokenFactory, make_settings
from recovery.gateway.main import SERVICE, create_app
from recovery.gateway.settings import GatewaySettings
from recovery.gateway.testing import STOPPED, serving
from recovery.gateway.trusted_documents import document_hash, main, operation_documents

pytestmark = pytest.mark.integration

OPERATIONS = """
query WhoAmI { me { ...Who } }
query MyTeams { me { teamIds } }
fragment Who on Me { sub roles }
"""
UNKNOWN = "0" * 64


@pytest.fixture(scope="module")
def manifest_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The manifest the command writes for a file of the web app's operations."""
    directory = tmp_path_factory.mktemp("trusted")
    (directory / "web.graphql").write_text(OPERATIONS)
    main([str(directory / "web.graphql"), "-o", str(directory / "manifest.json")])
    return directory / "manifest.json"


@pytest.fixture(scope="module")
def manifest(manifest_path: Path) -> dict[str, str]:
    """Each operation's hash, by its name."""
    return {name: document_hash(text) for name, text in operation_documents(OPERATIONS).items()}


def gateway_app(dev_issuer: DevIssuer, manifest_path: Path, only: bool) -> FastAPI:
    # The services are "stopped": `me` needs none of them.
    urls = {f"{s}_url": STOPPED for s in ("goals", "crisis_plans", "risk", "training",
                                          "workforce")}
    gateway = GatewaySettings(environment="production", **urls,
                              trusted_documents_path=manifest_path,
                              trusted_documents_only=only)
    settings = make_settings(SERVICE, database_url="sqlite://", jwks_file=dev_issuer.jwks_path)
    return create_app(settings, gateway)


@pytest.fixture(params=[True, False], ids=["trusted-only", "open"])
async def gateway(request: pytest.FixtureRequest, dev_issuer: DevIssuer,
                  manifest_path: Path) -> AsyncIterator[tuple[FastAPI, bool]]:
    app = gateway_app(dev_issuer, manifest_path, request.param)
    async with LifespanManager(app):
        yield app, request.param


async def post(app: FastAPI, token: str, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://gateway") as client:
        return await client.post("/graphql", json=body,
                                 headers={"Authorization": f"Bearer {token}"})


def test_the_command_writes_one_document_per_operation_with_the_fragments_it_uses(
        manifest: dict[str, str], manifest_path: Path) -> None:
    written = json.loads(manifest_path.read_text())
    assert set(written) == set(manifest.values())
    who, teams = written[manifest["WhoAmI"]], written[manifest["MyTeams"]]
    assert "fragment Who on Me" in who and "fragment" not in teams
    assert all(document_hash(text) == named for named, text in written.items())


@pytest.mark.parametrize("form", ["documentId", "persistedQuery"])
async def test_a_registered_document_runs_by_its_hash(
        gateway: tuple[FastAPI, bool], manifest: dict[str, str], tokens: TokenFactory,
        form: str) -> None:
    app, _ = gateway
    named = manifest["WhoAmI"]
    body: dict[str, Any] = {"documentId": f"sha256:{named}"} if form == "documentId" else {
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": named}}}
    response = await post(app, tokens.service_user("p-1"), body)
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"me": {"sub": "p-1", "roles": ["SERVICE_USER"]}}
    assert "errors" not in response.json()


@pytest.mark.parametrize("body", [
    {"documentId": f"sha256:{UNKNOWN}"},
    {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": UNKNOWN}}}])
async def test_an_unknown_hash_is_refused_with_a_typed_error(
        gateway: tuple[FastAPI, bool], tokens: TokenFactory, body: dict[str, Any]) -> None:
    app, _ = gateway
    response = await post(app, tokens.service_user("p-1"), body)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


@pytest.mark.parametrize("document_id", ["sha256:ABC", "md5:" + UNKNOWN, UNKNOWN])
async def test_a_malformed_document_id_is_invalid(
        gateway: tuple[FastAPI, bool], tokens: TokenFactory, document_id: str) -> None:
    app, _ = gateway
    response = await post(app, tokens.service_user("p-1"), {"documentId": document_id})
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "INVALID"


async def test_free_text_runs_only_where_trusted_documents_are_not_required(
        gateway: tuple[FastAPI, bool], tokens: TokenFactory) -> None:
    app, only = gateway
    response = await post(app, tokens.service_user("p-1"), {"query": "{ me { sub } }"})
    if only:
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"
        [error] = response.json()["errors"]
        assert error["extensions"]["code"] == "TRUSTED_DOCUMENT_REQUIRED"
    else:
        assert response.status_code == 200
        assert response.json()["data"] == {"me": {"sub": "p-1"}}
        assert "errors" not in response.json()


async def over_websocket(app: FastAPI, token: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The first answer to one operation sent over graphql-transport-ws."""
    async with serving(app) as address, websockets.connect(
            f"ws://{address}/graphql", subprotocols=["graphql-transport-ws"]  # type: ignore[list-item]
    ) as socket:
        await socket.send(json.dumps({"type": "connection_init",
                                      "payload": {"Authorization": f"Bearer {token}"}}))
        assert json.loads(await socket.recv())["type"] == "connection_ack"
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        answer: dict[str, Any] = json.loads(await socket.recv())
        return answer


async def test_over_websocket_a_hash_runs_and_refusals_are_typed(
        gateway: tuple[FastAPI, bool], manifest: dict[str, str], tokens: TokenFactory) -> None:
    app, only = gateway
    token = tokens.service_user("p-1")
    by_hash = await over_websocket(app, token, {"documentId": f"sha256:{manifest['MyTeams']}"})
    assert (by_hash["id"], by_hash["type"]) == ("1", "next")
    assert by_hash["payload"]["data"] == {"me": {"teamIds": []}}
    assert "errors" not in by_hash["payload"]
    apollo = await over_websocket(app, token, {"query": None, "extensions": {
        "persistedQuery": {"version": 1, "sha256Hash": manifest["MyTeams"]}}})
    assert apollo["payload"]["data"] == {"me": {"teamIds": []}}
    unknown = await over_websocket(app, token, {"documentId": f"sha256:{UNKNOWN}"})
    assert unknown["type"] == "error"
    assert [e["extensions"]["code"] for e in unknown["payload"]] == ["PERSISTED_QUERY_NOT_FOUND"]
    text = await over_websocket(app, token, {"query": "{ me { sub } }"})
    if only:
        assert text["type"] == "error"
        assert [e["extensions"]["code"] for e in text["payload"]] == [
            "TRUSTED_DOCUMENT_REQUIRED"]
    else:
        assert (text["id"], text["type"]) == ("1", "next")
        assert text["payload"]["data"] == {"me": {"sub": "p-1"}}
