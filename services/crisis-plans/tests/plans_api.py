"""The crisis-plans tests' client and sample plan, in a module of its own name (every
service's tests have a ``conftest``, and only one of them can be imported as that)."""

from dataclasses import dataclass
from typing import Any

import httpx
from fhir.resources.R4B import get_fhir_model_class

from recovery.common.testing.plugin import TokenFactory, unique
from recovery.common.testing.plugin import auth as bearer

__all__ = ["FHIR_JSON", "PLAN_CONTENT", "SHARED_DECISION", "PlansApi", "fhir_valid", "links",
           "outcome", "unique"]

FHIR_JSON = "application/fhir+json"


def fhir_valid(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    """The FHIR resource answered, checked with fhir.resources (a Bundle's entries too), with
    a generated narrative wherever FHIR allows one."""
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
    return body


def outcome(response: httpx.Response, status: int) -> dict[str, Any]:
    """A refusal under /fhir: an OperationOutcome, never a problem document."""
    body = fhir_valid(response, status)
    assert body["resourceType"] == "OperationOutcome", body
    return body


def links(bundle: dict[str, Any]) -> dict[str, str]:
    return {link["relation"]: link["url"] for link in bundle.get("link", [])}

#: A plan with something personal in every section a crisis team reads first (no copy-holders:
#: the person chooses those, and most plans here are started by a clinician).
PLAN_CONTENT: dict[str, Any] = {
    "when_well": ["I cook for friends and walk the dog every morning"],
    "early_warning_signs": ["Sleeping less than four hours", "Stopping answering my sister"],
    "triggers": ["Anniversary of my dad's death in March"],
    "what_helps": ["Sitting in the garden with someone I trust"],
    "what_does_not_help": ["Being told to calm down"],
    "coping_strategies": ["Listening to my playlist", "Cold water on my face"],
    "helpful_contacts": [{"name": "Ana", "role": "sister", "how_to_reach": "mobile, evenings"}],
    "people_not_to_involve": [{"name": "My ex-partner", "reason": "It makes things worse"}],
    "professional_contacts": [{"name": "Crisis line", "role": "24-hour crisis line",
                               "how_to_reach": "the number on my fridge",
                               "available_24_hours": True}],
    "preferred_setting": "Home treatment",
    "declined_treatments": [{"treatment": "Haloperidol", "reason": "Severe stiffness before",
                             "acceptable_alternatives": ["Olanzapine"]}],
    "participants": [{"role": "service_user"}, {"role": "care_coordinator", "id": "staff-1"}],
    "review_on": "2031-01-01",
}

#: A shared decision on medication with every part the API asks for.
SHARED_DECISION: dict[str, Any] = {
    "question": "Which tablet?", "options_considered": [{"option": "A"}],
    "what_matters_to_me": "Sleep", "clinician_information": "A helps sleep",
    "decision_in_my_words": "I will try A", "one_thing_i_will_do": "Note my sleep",
    "review_on": "2031-01-01"}


@dataclass
class PlansApi:
    """An in-process client of the crisis-plans service with helpers in the domain's words."""

    client: httpx.AsyncClient
    tokens: TokenFactory

    auth = staticmethod(bearer)

    async def draft(self, token: str, person: str, team: str = "team-a",
                    **content: Any) -> dict[str, Any]:
        body = {"service_user_id": person, "team_id": team, **(content or PLAN_CONTENT)}
        response = await self.client.post("/v1/crisis-plans", json=body,
                                          headers=self.auth(token))
        assert response.status_code == 201, response.text
        plan: dict[str, Any] = response.json()
        return plan

    async def sign(self, token: str, plan: dict[str, Any], **body: Any) -> httpx.Response:
        return await self.client.post(
            f"/v1/crisis-plans/{plan['id']}/signatures",
            json={"content_hash": plan["content_hash"], **body},
            headers=self.auth(token, f'"{plan["version"]}"'))

    async def agreed(self, staff: str, person: str, person_token: str,
                     team: str = "team-a") -> dict[str, Any]:
        plan = await self.draft(staff, person, team)
        assert (await self.sign(person_token, plan)).status_code == 201
        signed = await self.sign(staff, plan)
        assert signed.status_code == 201, signed.text
        result: dict[str, Any] = signed.json()
        assert result["status"] == "agreed"
        return result

    async def edit(self, token: str, plan_id: str, etag: str,
                   **content: Any) -> httpx.Response:
        return await self.client.put(f"/v1/crisis-plans/{plan_id}", json=content,
                                     headers=self.auth(token, etag))

    async def active(self, token: str, person: str) -> httpx.Response:
        return await self.client.get(f"/v1/people/{person}/crisis-plan",
                                     headers=self.auth(token))

    async def plans_of(self, token: str, person: str, **params: Any) -> httpx.Response:
        return await self.client.get(f"/v1/people/{person}/crisis-plans", params=params,
                                     headers=self.auth(token))

    async def fhir(self, token: str | None, path: str, params: Any = None,
                   **headers: str) -> httpx.Response:
        """A FHIR request (``path`` under /fhir, or a link the service gave)."""
        sent = {name.replace("_", "-"): value for name, value in headers.items()}
        if token is not None:
            sent.update(self.auth(token))
        url = path if path.startswith("http") else f"/fhir/{path}"
        return await self.client.get(url, params=params, headers=sent)

    async def mark_in_error(self, token: str, plan_id: str, etag: str | None,
                            reason: str = "duplicate") -> httpx.Response:
        return await self.client.post(f"/v1/crisis-plans/{plan_id}/entered-in-error",
                                      json={"reason": reason}, headers=self.auth(token, etag))
