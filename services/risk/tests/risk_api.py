"""Helpers of the risk tests: a client of the risk service that reads like the domain.

Kept apart from conftest.py so tests import it by a name no other service's tests use.
"""

from dataclasses import dataclass
from typing import Any

import httpx
from fhir.resources.R4B import get_fhir_model_class

from recovery.common.testing.plugin import TokenFactory, unique
from recovery.common.testing.plugin import auth as bearer

__all__ = ["FHIR_JSON", "RiskApi", "area", "fhir_valid", "links", "outcome", "unique"]

FHIR_JSON = "application/fhir+json"


def fhir_valid(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    """The FHIR resource answered, checked with fhir.resources (a Bundle's entries too), with
    a generated narrative wherever FHIR allows one and none where it forbids one (contained
    resources, dom-1)."""
    assert response.status_code == status, f"{response.status_code} {response.text}"
    assert response.headers["content-type"].startswith(FHIR_JSON), response.headers
    body: dict[str, Any] = response.json()
    get_fhir_model_class(body["resourceType"]).model_validate(body)
    resources = ([entry["resource"] for entry in body.get("entry", [])]
                 if body["resourceType"] == "Bundle" else [body])
    for resource in resources:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        if resource["resourceType"] not in {"OperationOutcome", "CapabilityStatement"}:
            assert resource["text"]["status"] == "generated", resource
        for contained in resource.get("contained", []):
            assert "text" not in contained and "meta" not in contained, contained
    return body


def outcome(response: httpx.Response, status: int) -> dict[str, Any]:
    """A refusal under /fhir: an OperationOutcome, never a problem document."""
    body = fhir_valid(response, status)
    assert body["resourceType"] == "OperationOutcome", body
    return body


def links(bundle: dict[str, Any]) -> dict[str, str]:
    return {link["relation"]: link["url"] for link in bundle.get("link", [])}


def area(name: str = "safety_of_self", *, person: str | None = "I know my signs now",
         clinician: str | None = "Fewer crises since spring", agree: bool | None = True,
         difference: str | None = None, **extra: Any) -> dict[str, Any]:
    """One area talked through, with both views by default."""
    body: dict[str, Any] = {"area": name, "service_user_view": person,
                            "clinician_view": clinician, "views_agree": agree,
                            "strengths": ["Walks the dog daily"],
                            "protective_factors": ["Sister nearby"], **extra}
    if difference is not None:
        body["difference"] = difference
    return {k: v for k, v in body.items() if v is not None}


@dataclass
class RiskApi:
    """An in-process client of the risk service with helpers that read like the domain."""

    client: httpx.AsyncClient
    tokens: TokenFactory

    auth = staticmethod(bearer)

    async def draft(self, token: str, **body: Any) -> dict[str, Any]:
        body.setdefault("areas", [area()])
        response = await self.client.post("/v1/risk-assessments", json=body,
                                          headers=self.auth(token))
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def read(self, token: str, assessment_id: str) -> httpx.Response:
        return await self.client.get(f"/v1/risk-assessments/{assessment_id}",
                                     headers=self.auth(token))

    async def sign(self, token: str, assessment: dict[str, Any]) -> httpx.Response:
        return await self.client.post(
            f"/v1/risk-assessments/{assessment['id']}/signatures",
            json={"content_hash": assessment["content_hash"]},
            headers=self.auth(token, f'"{assessment["version"]}"'))

    async def send(self, method: str, path: str, token: str, *, etag: str | None = None,
                   json: Any = None) -> httpx.Response:
        return await self.client.request(method, path, json=json,
                                         headers=self.auth(token, etag))

    async def fhir(self, token: str | None, path: str, params: Any = None,
                   **headers: str) -> httpx.Response:
        """A FHIR request (``path`` under /fhir, or a link the service gave)."""
        sent = {name.replace("_", "-"): value for name, value in headers.items()}
        if token is not None:
            sent.update(self.auth(token))
        url = path if path.startswith("http") else f"/fhir/{path}"
        return await self.client.get(url, params=params, headers=sent)

    async def agreed(self, person: str, team: str, staff: str = "clin-1",
                     **body: Any) -> dict[str, Any]:
        """A co-assessment both sides have signed."""
        clinician = self.tokens.clinician(staff, [team])
        drafted = await self.draft(clinician, service_user_id=person, team_id=team, **body)
        assert (await self.sign(self.tokens.service_user(person), drafted)).status_code == 201
        signed = await self.sign(clinician, drafted)
        assert signed.status_code == 201, signed.text
        result: dict[str, Any] = signed.json()
        return result
