"""Schemathesis over the kit's own operations (health, audit export) on each backend: no
server error, and every response matches the OpenAPI document."""

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kit_toy import MIGRATIONS_DIR, create_app, toy_settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from recovery.common.dev_issuer import DevIssuer
from recovery.common.migrations import upgrade_to_head
from recovery.common.testing.plugin import TokenFactory

KIT_PATHS = "^/(healthz|readyz|v1/audit-events|fhir/AuditEvent)"


def test_kit_operations_never_fail_and_always_answer_as_documented(
        database_url: str, dev_issuer: DevIssuer, tokens: TokenFactory) -> None:
    upgrade_to_head(MIGRATIONS_DIR, database_url)
    app = create_app(toy_settings(database_url, dev_issuer))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex=KIT_PATHS)
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results]  # type: ignore[union-attr]
    assert len(operations) == 5
    headers = tokens.header(tokens.admin())

    @given(case=st.one_of(*(operation.as_strategy() for operation in operations)))
    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def answers_as_documented(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
        # A cursor or FHIR date that fits the schema can still be meaningless (400), and
        # unknown query parameters are ignored, as FHIR servers do: those checks do not apply.
        case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance,
                                                                 negative_data_rejection])

    answers_as_documented()
