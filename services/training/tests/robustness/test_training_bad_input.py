"""Bad input on every body-taking training operation, on both databases: a 4xx problem
document, never a server error, and nothing changed."""

from typing import Any

from training_api import TrainingApi, unique

BAD_BODIES: dict[str, Any] = {
    "not JSON": b"{not json",
    "a list": [1, 2],
    "an unknown field": {"unexpected": True},
    "NUL characters": {"title": "a\u0000b", "words": "\u0000"},
    "huge strings": {"title": "x" * 5000, "display_name": "x" * 5000, "words": "x" * 10000},
    "wrong types": {"capacity": "many", "attended": "perhaps", "rating": "five",
                    "completed_on": "yesterday", "starts_on": 7, "delivered_by": "Sam"},
}


async def test_bad_bodies_get_a_problem_and_change_nothing(api: TrainingApi) -> None:
    learner_sub = unique("staff")
    learner = api.tokens.clinician(learner_sub)
    course_id = await api.course()
    run_id = await api.run(course_id)
    educator_id = await api.educator(lived_experience=True)
    enrolment = await api.enrol(run_id, learner)
    targets = [
        ("POST", "/v1/courses", api.college), ("PATCH", f"/v1/courses/{course_id}", api.college),
        ("POST", f"/v1/courses/{course_id}/runs", api.college),
        ("POST", f"/v1/runs/{run_id}/delivery", api.college),
        ("POST", "/v1/educators", api.college),
        ("POST", f"/v1/educators/{educator_id}/training", api.college),
        ("POST", f"/v1/educators/{educator_id}/supervision", api.college),
        ("POST", f"/v1/educators/{educator_id}/support", api.college),
        ("POST", f"/v1/runs/{run_id}/enrolments", api.college),
        ("POST", f"/v1/enrolments/{enrolment['id']}/attendance", api.college),
        ("POST", f"/v1/enrolments/{enrolment['id']}/completion", api.college),
        ("POST", f"/v1/enrolments/{enrolment['id']}/feedback", learner),
    ]
    admin = api.tokens.admin()
    watched = [f"/v1/courses/{course_id}", f"/v1/runs/{run_id}",
               f"/v1/educators/{educator_id}", f"/v1/enrolments/{enrolment['id']}",
               "/v1/courses?limit=1000", f"/v1/enrolments?run_id={run_id}"]

    async def snapshot() -> list[str]:
        return [(await api.send("GET", path, admin)).text for path in watched]

    before = await snapshot()
    wrong: list[str] = []
    for method, path, token in targets:
        for name, body in BAD_BODIES.items():
            headers = {**api.auth(token, etag="*"), "Content-Type": "application/json"}
            content = body if isinstance(body, bytes) else None
            response = await api.client.request(
                method, path, headers=headers, content=content,
                json=None if content is not None else body)
            if not (400 <= response.status_code < 500) or response.headers.get(
                    "content-type") != "application/problem+json":
                wrong.append(f"{method} {path} with {name}: {response.status_code}")
    assert wrong == [], "\n".join(wrong)
    assert await snapshot() == before


async def test_bad_query_and_path_values_get_a_problem(api: TrainingApi) -> None:
    admin = api.tokens.admin()
    for path, params in (("/v1/enrolments", {"limit": "0"}),
                         ("/v1/enrolments", {"status": "finished"}),
                         ("/v1/enrolments", {"cursor": "%%%"}),
                         ("/v1/courses", {"limit": "lots"}),
                         ("/v1/enrolments/" + "x" * 65, {}),
                         ("/v1/courses/" + "y" * 40, {})):
        response = await api.send("GET", path, admin, params=params)
        assert 400 <= response.status_code < 500, (path, params, response.text)
        assert response.headers["content-type"] == "application/problem+json"
