"""The FHIR pieces every service builds on: each is a valid R4 resource (checked with
fhir.resources), in FHIR's media type."""

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.provenance import Provenance
from starlette.requests import Request

from recovery.common import fhir
from recovery.common.cosign import Signature
from recovery.common.deps import get_settings
from recovery.common.problems import Problem, install_problem_handlers
from recovery.common.settings import Settings

SIGNED = datetime(2026, 3, 4, 10, 30, 15, 123456, tzinfo=UTC)


def test_an_instant_is_utc_with_milliseconds() -> None:
    plus_two = SIGNED.astimezone(timezone(timedelta(hours=2)))
    assert fhir.instant(plus_two) == "2026-03-04T10:30:15.123Z"


def test_a_concept_repeats_its_display_as_text_only_when_asked() -> None:
    assert fhir.concept("urn:s", "c") == {"coding": [{"system": "urn:s", "code": "c"}]}
    assert fhir.concept("urn:s", "c", "See", text=True) == {
        "coding": [{"system": "urn:s", "code": "c", "display": "See"}], "text": "See"}


def test_the_capability_statement_names_the_service_and_its_resources() -> None:
    statement = fhir.capability_statement(
        service="goals", settings=Settings(jwt_issuer="https://idp.example"),
        resources=[{"type": "Goal", "interaction": [{"code": "read"}]}])
    parsed = CapabilityStatement.model_validate(statement)
    assert parsed.software.name == "recovery-goals"
    assert parsed.fhirVersion == fhir.FHIR_VERSION
    rest = parsed.rest[0]
    assert [r.type for r in rest.resource] == ["Goal"]
    assert rest.security.service[0].coding[0].code == "SMART-on-FHIR"
    oauth = {e.url: e.valueUri for e in rest.security.extension[0].extension}
    assert rest.security.extension[0].url == fhir.OAUTH_URIS
    assert oauth == {"authorize": "https://idp.example/authorize",
                     "token": "https://idp.example/token"}


def _provenance(given: list[Signature]) -> dict[str, Any]:
    standing = [s for s in given if not s.withdrawn]
    return fhir.provenance(
        "CarePlan/plan-1", 3, given=given, activity="agreed",
        agents=[{"who": {"reference": f"Patient/{s.signatory}"}} for s in standing],
        signatures=[{"type": [{"system": "urn:iso-astm:E1762-95:2013",
                               "code": "1.2.840.10065.1.12.1.7"}],
                     "when": fhir.instant(s.signed_at),
                     "who": {"reference": f"Patient/{s.signatory}"},
                     "sigFormat": "text/plain", "data": fhir.signed_content(s.content_hash)}
                    for s in standing])


def _signature(signatory: str, signed_at: datetime,
               withdrawn_at: datetime | None = None) -> Signature:
    return Signature(signatory=signatory, party="service_user", version=3,
                     content_hash="sha256:abc", signed_at=signed_at, withdrawn_at=withdrawn_at)


def test_a_provenance_binds_a_version_of_its_target_to_the_signed_content() -> None:
    resource = _provenance([_signature("su-1", SIGNED)])
    parsed = Provenance.model_validate(resource)
    assert parsed.id == "plan-1-v3"
    assert parsed.target[0].reference == "CarePlan/plan-1/_history/3"
    assert parsed.activity.text == "agreed"
    assert parsed.signature[0].data == b"sha256:abc"
    assert fhir.provenance_target(parsed.id) == ("plan-1", 3)


def test_a_provenance_version_moves_with_each_signature_and_each_withdrawal() -> None:
    later, latest = SIGNED + timedelta(minutes=1), SIGNED + timedelta(minutes=2)
    one = _provenance([_signature("su-1", SIGNED)])
    two = _provenance([_signature("su-1", SIGNED), _signature("staff-1", later)])
    withdrawn = _provenance([_signature("su-1", SIGNED, withdrawn_at=latest),
                             _signature("staff-1", later)])
    assert [p["meta"]["versionId"] for p in (one, two, withdrawn)] == ["1", "2", "3"]
    assert withdrawn["meta"]["lastUpdated"] == fhir.instant(latest)
    # Recorded when the latest signature still standing was made.
    assert withdrawn["recorded"] == fhir.instant(later)
    assert [s["who"]["reference"] for s in withdrawn["signature"]] == ["Patient/staff-1"]


@pytest.mark.parametrize("wrong", ["plan-1", "plan-1-v", "plan-1-v0", "plan-1-v01",
                                   "plan-1-vx", "-v1", "plan-1-v1234567890", "x" * 37 + "-v1",
                                   "plan 1-v1"])
def test_an_id_no_provenance_has_is_a_404(wrong: str) -> None:
    with pytest.raises(Problem) as refused:
        fhir.provenance_target(wrong)
    assert refused.value.status == 404


def test_a_searchset_lists_its_matches_with_links_and_total() -> None:
    entries = [fhir.match({"resourceType": "Provenance", "id": "p-v1", "recorded":
                           fhir.instant(SIGNED), "target": [{"reference": "CarePlan/p"}],
                           "agent": [{"who": {"reference": "Patient/su-1"}}]},
                          "https://api.example/fhir/Provenance/p-v1")]
    bundle = fhir.searchset(entries, links=[{"relation": "self", "url": "https://x/fhir/P"}],
                            total=1)
    parsed = Bundle.model_validate(bundle)
    assert (parsed.type, parsed.total, parsed.link[0].relation) == ("searchset", 1, "self")
    assert parsed.entry[0].search.mode == "match"
    assert parsed.entry[0].fullUrl == "https://api.example/fhir/Provenance/p-v1"
    empty = fhir.searchset([])
    assert empty["entry"] == [] and "link" not in empty and "total" not in empty


def test_a_fhir_response_is_fhir_json() -> None:
    response = fhir.FhirResponse({"resourceType": "Bundle"})
    assert response.headers["content-type"] == fhir.FHIR_JSON
    assert json.loads(response.body) == {"resourceType": "Bundle"}


async def test_a_service_fhir_router_answers_metadata_with_its_capability_statement() -> None:
    app = FastAPI()
    app.include_router(fhir.fhir_router(
        "toy", lambda settings: [{"type": "Observation", "interaction": [{"code": "read"}]}]))
    app.dependency_overrides[get_settings] = lambda: Settings(jwt_issuer="https://idp.example")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as client:
        answer = await client.get("/fhir/metadata")
        smart = await client.get("/fhir/.well-known/smart-configuration")
        xml = await client.get("/fhir/metadata", headers={"Accept": "application/fhir+xml"})
    assert smart.status_code == 200 and smart.headers["content-type"] == "application/json"
    assert smart.json()["token_endpoint"] == "https://idp.example/token"
    assert "client_credentials" in smart.json()["grant_types_supported"]
    assert xml.status_code == 406
    assert answer.status_code == 200
    assert answer.headers["content-type"] == fhir.FHIR_JSON
    assert CapabilityStatement.model_validate(answer.json()).software.name == "recovery-toy"
    assert "CapabilityStatement of the toy service" in str(app.openapi())


def _request(query: str = "", headers: dict[str, str] | None = None,
             path: str = "/fhir/Goal") -> Request:
    return Request({"type": "http", "method": "GET", "scheme": "http", "path": path,
                    "root_path": "", "query_string": query.encode(),
                    "server": ("goals.internal", 8001),
                    "headers": [(k.lower().encode(), v.encode())
                                for k, v in {"host": "goals.internal:8001",
                                             **(headers or {})}.items()]})


GOAL_SEARCH = (fhir.ID, fhir.LAST_UPDATED,
               fhir.SearchParam("patient", "reference", "The person"))


def _search(query: str, headers: dict[str, str] | None = None) -> fhir.Search:
    return fhir.parse_search(_request(query, headers), "Goal", GOAL_SEARCH,
                             default_count=50, max_count=200)


def test_the_public_base_is_where_the_gateway_says_the_caller_reached_us() -> None:
    assert fhir.public_base(_request()) == "http://goals.internal:8001/fhir"
    told = fhir.forwarding_headers("https://ehr-api.trust.example/recovery/fhir")
    assert fhir.public_base(_request(headers=told)) == "https://ehr-api.trust.example/recovery/fhir"
    ingress = {"x-forwarded-proto": "https", "x-forwarded-host": "api.example"}
    assert fhir.public_base(_request(headers=ingress)) == "https://api.example/fhir"
    # Nonsense is not believed: the links would lead nowhere.
    for bad in ({"forwarded": "proto=javascript;host=x"},
                {"forwarded": 'host="a/b"'}, {"x-forwarded-prefix": "/../x"}):
        assert fhir.public_base(_request(headers=bad)) == "http://goals.internal:8001/fhir"


def test_a_search_caps_its_count_and_counts_only_when_asked() -> None:
    assert _search("_count=5000").count == 200
    assert _search("_count=0").count_only
    assert _search("_summary=count").count_only and _search("_summary=count").wants_total
    assert _search("_total=accurate").wants_total and not _search("").wants_total
    for bad in ("_count=-1", "_count=ten", "_total=some", "patient="):
        try:
            _search(bad)
        except Problem as problem:
            assert problem.status == 400
        else:
            raise AssertionError(f"{bad} was accepted")


def test_an_unknown_parameter_is_dropped_or_refused_when_strict() -> None:
    lenient = _search("patient=Patient/su-1&colour=blue&_count=10")
    assert lenient.url() == "http://goals.internal:8001/fhir/Goal?patient=Patient%2Fsu-1&_count=10"
    try:
        _search("patient=su-1&colour=blue", {"prefer": "handling=strict"})
    except Problem as problem:
        assert problem.status == 400 and "colour" in problem.detail
    else:
        raise AssertionError("strict handling accepted an unknown parameter")


def test_a_search_bundle_links_its_pages_at_the_public_base() -> None:
    search = _search("_id=a,b&_count=1&_cursor=c1",
                     fhir.forwarding_headers("https://api.example/fhir"))
    assert search.ids == ["a", "b"] and search.cursor == "c1"
    bundle = search.bundle([{"resourceType": "Basic", "id": "a",
                             "code": {"text": "x"}}], next_cursor="c2")
    parsed = Bundle.model_validate(bundle)
    assert [link.url for link in parsed.link] == [
        "https://api.example/fhir/Goal?_id=a%2Cb&_count=1",
        "https://api.example/fhir/Goal?_id=a%2Cb&_count=1&_cursor=c2"]
    assert parsed.entry[0].fullUrl == "https://api.example/fhir/Goal/a"
    assert parsed.entry[0].resource.text.status == "generated"
    assert parsed.total is None  # a later page: the total is not known without a count
    counted = _search("_summary=count").bundle([], total=7)
    assert counted["total"] == 7 and counted["entry"] == []


def test_last_updated_prefixes_and_precisions_make_one_range() -> None:
    day = datetime(2026, 2, 1, tzinfo=UTC)
    assert fhir.date_bounds(["2026-02-01"]) == (day, day + timedelta(days=1))
    assert fhir.date_bounds(["ge2026-02", "lt2026-03-01T00:00:00Z"]) == (
        day, datetime(2026, 3, 1, tzinfo=UTC))
    assert fhir.date_bounds(["gt2026"]) == (datetime(2027, 1, 1, tzinfo=UTC), None)
    assert fhir.date_bounds(["le2026-12"]) == (None, datetime(2027, 1, 1, tzinfo=UTC))
    assert fhir.date_bounds(["sa2026-02-01T10:00:00+01:00"]) == (
        datetime(2026, 2, 1, 9, 0, 1, tzinfo=UTC), None)
    assert fhir.date_bounds(["eb2026-02-01T10:00:00.5Z"])[1] == datetime(
        2026, 2, 1, 10, 0, 0, 500000, tzinfo=UTC)
    for bad in ("ne2026-01-01", "2026-13-01", "yesterday", "ge2026-02-30"):
        try:
            fhir.date_bounds([bad], "_lastUpdated")
        except Problem as problem:
            assert problem.status == 400 and "_lastUpdated" in problem.detail
        else:
            raise AssertionError(f"{bad} was accepted")


def test_a_read_carries_its_version_and_answers_304_to_a_client_that_has_it() -> None:
    goal = {"resourceType": "Basic", "id": "g1", "code": {"text": "<b>walk</b>"},
            "meta": {"versionId": "3", "lastUpdated": "2026-02-01T10:00:00.000Z"}}
    answer = fhir.read_response(_request(), goal)
    assert answer.headers["etag"] == 'W/"3"'
    assert answer.headers["last-modified"] == "Sun, 01 Feb 2026 10:00:00 GMT"
    body = json.loads(answer.body)
    assert list(body)[:4] == ["resourceType", "id", "meta", "text"]
    assert "&lt;b&gt;walk&lt;/b&gt;" in body["text"]["div"]  # escaped, never markup
    assert fhir.read_response(_request(headers={"if-none-match": 'W/"3"'}), goal
                              ).status_code == 304
    assert fhir.read_response(_request(headers={"if-none-match": 'W/"2"'}), goal
                              ).status_code == 200


def test_a_history_bundle_says_how_each_version_was_made() -> None:
    versions = [{"resourceType": "Basic", "id": "g1", "code": {"text": "x"},
                 "meta": {"versionId": str(v), "lastUpdated": "2026-02-01T10:00:00.000Z"}}
                for v in (2, 1)]
    bundle = Bundle.model_validate(fhir.history(
        "https://api.example/fhir", "Basic", versions,
        self_url="https://api.example/fhir/Basic/g1/_history"))
    assert bundle.type == "history"
    assert [(e.request.method, e.response.status) for e in bundle.entry] == [
        ("PUT", "200 OK"), ("POST", "201 Created")]


async def test_errors_under_fhir_are_operation_outcomes_and_elsewhere_problems() -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/fhir/Thing/{thing}")
    @app.get("/v1/things/{thing}")
    async def thing(thing: int) -> dict[str, int]:
        raise Problem(404, "No Thing with that id is available to you.", kind="not-found")

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as client:
        fhir_missing = await client.get("/fhir/Thing/1")
        fhir_invalid = await client.get("/fhir/Thing/one")
        rest_missing = await client.get("/v1/things/1")
    assert fhir_missing.headers["content-type"] == fhir.FHIR_JSON
    outcome = OperationOutcome.model_validate(fhir_missing.json())
    assert (outcome.issue[0].code, outcome.issue[0].diagnostics) == (
        "not-found", "No Thing with that id is available to you.")
    invalid = OperationOutcome.model_validate(fhir_invalid.json())
    assert fhir_invalid.status_code == 422 and invalid.issue[1].expression == ["path.thing"]
    assert rest_missing.headers["content-type"] == "application/problem+json"
    assert rest_missing.json()["status"] == 404


def test_a_date_with_a_fraction_of_a_second_stands_for_as_much_time_as_it_writes() -> None:
    """``meta.lastUpdated`` shows milliseconds: searching for it finds the change made in
    that millisecond, and ``gt`` it finds only later ones."""
    shown = fhir.instant(SIGNED)  # 2026-03-04T10:30:15.123Z
    assert fhir.date_bounds([shown]) == (SIGNED.replace(microsecond=123000),
                                         SIGNED.replace(microsecond=124000))
    assert fhir.date_bounds([f"gt{shown}"]) == (SIGNED.replace(microsecond=124000), None)
    assert fhir.date_bounds(["le2026-03-04T10:30:15.123456Z"]) == (
        None, SIGNED + timedelta(microseconds=1))


def test_a_search_reads_token_and_reference_lists_as_any_of_each_and_all_of_them() -> None:
    search = fhir.Search("CarePlan", "https://api.example/fhir", values={
        "status": ["draft,active", "active,revoked"],
        "patient": ["Patient/a,https://ehr.example/fhir/Patient/b", "b"],
        "subject": ["a,b"]})
    assert search.codes("status") == {"active"}
    assert search.codes("category") is None
    assert search.referenced(("patient", "subject"), "Patient") == {"b"}
    assert search.referenced(("performer",), "Patient") is None
    many = fhir.Search("CarePlan", "https://api.example/fhir",
                       values={"patient": [",".join(f"p{i}" for i in range(3))]})
    with pytest.raises(Problem):
        many.referenced(("patient",), "Patient", at_most=2)
    with pytest.raises(Problem):
        fhir.Search("CarePlan", "x", values={"patient": ["Goal/1"]}).referenced(
            ("patient",), "Patient")


def test_a_search_that_counts_only_holds_no_page_and_links_its_history() -> None:
    search = fhir.Search("CarePlan", "https://api.example/fhir", kept=[("_count", "2")],
                         count=2)
    assert search.page_size == 2
    assert search.history_url("p-1", _cursor="c") == (
        "https://api.example/fhir/CarePlan/p-1/_history?_count=2&_cursor=c")
    assert fhir.Search("CarePlan", "https://x/fhir").history_url("p-1") == (
        "https://x/fhir/CarePlan/p-1/_history")
    search.count_only = True
    assert search.page_size == 0


def test_a_search_route_describes_its_parameters_without_validating_them() -> None:
    described = fhir.search_openapi([fhir.ID])["parameters"]
    assert [p["name"] for p in described] == ["_id", "_count", "_summary", "_total", "_cursor"]
    assert all(p["in"] == "query" and not p["required"] for p in described)
