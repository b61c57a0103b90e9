"""Every closed set of values in the GraphQL schema is an enum, and every value a service can
produce maps to one of its members (named as GraphQL names values, UPPER_SNAKE)."""

from enum import Enum

import pytest

from recovery.common.auth import Role as TokenRole
from recovery.crisis_plans import models as crisis_plans
from recovery.gateway.schema import build_schema
from recovery.gateway.types import enums
from recovery.goals import models as goals
from recovery.risk import models as risk
from recovery.training import models as training
from recovery.workforce import models as workforce
from recovery.workforce.rules import FACTORS, level


def values(produced: type[Enum]) -> set[str]:
    return {str(member.value) for member in produced}


#: Each gateway enum beside every value its services produce.
PRODUCED: dict[type[Enum], set[str]] = {
    enums.GoalKind: values(goals.GoalKind),
    enums.LifeArea: values(goals.LifeArea),
    enums.ChimeTag: values(goals.ChimeTag),
    enums.ExpressedBy: values(goals.ExpressedBy),
    enums.GoalLifecycleStatus: values(goals.LifecycleStatus),
    enums.GoalAchievementStatus: values(goals.AchievementStatus),
    enums.CrisisPlanStatus: values(crisis_plans.PlanStatus),
    enums.SigningParty: values(crisis_plans.Party) | values(risk.Party),
    enums.RiskAssessmentStatus: values(risk.AssessmentStatus),
    enums.RiskAssessmentVersionStatus: values(risk.VersionStatus),
    enums.RiskArea: values(risk.RiskArea),
    enums.EnrolmentStatus: values(training.EnrolmentStatus),
    enums.FoundationTrainingStatus: values(training.EnrolmentStatus) | {"not-enrolled"},
    enums.LearnerKind: values(training.LearnerKind),
    enums.Audience: values(training.Audience),
    enums.Profession: values(workforce.Profession),
    enums.RoleType: values(workforce.RoleType),
    enums.CareContactMode: values(workforce.ContactMode),
    enums.Role: values(TokenRole),
    enums.ReadinessFactorName: set(FACTORS),
    enums.ReadinessLevel: {level(score / 100) for score in range(101)},
}


@pytest.mark.parametrize("enum", list(PRODUCED), ids=lambda e: e.__name__)
def test_every_value_a_service_produces_maps_to_an_enum_member(enum: type[Enum]) -> None:
    assert values(enum) == PRODUCED[enum]


@pytest.mark.parametrize("enum", list(PRODUCED), ids=lambda e: e.__name__)
def test_each_member_is_named_as_graphql_names_values(enum: type[Enum]) -> None:
    for member in enum:
        assert member.name == str(member.value).upper().replace("-", "_")


def test_every_enum_of_the_module_is_in_the_schema_and_checked_here() -> None:
    declared = {value for value in vars(enums).values()
                if isinstance(value, type) and issubclass(value, Enum)
                and value.__module__ == enums.__name__}
    assert declared == set(PRODUCED)
    schema = build_schema()
    for enum in declared:
        assert schema.get_type_by_name(enum.__name__) is not None, enum.__name__
