"""The gateway's own access checks, made before any call: the services check again."""

from recovery.common.auth import Principal, Role
from recovery.gateway.errors import forbidden


def check_person(principal: Principal, person_id: str) -> None:
    """A service user (or an app acting for one) reaches only their own records; staff and
    partner systems ask, and the services answer with what their teams and scopes allow."""
    own = principal.own_person()
    if own is not None or principal.is_service_user:
        if own != person_id:
            raise forbidden("another person's records")
        return
    if not (principal.is_staff or principal.is_system):
        raise forbidden("this person's records")


def check_team(principal: Principal, team_id: str) -> None:
    """Staff reach their own teams; partner systems what their scopes allow."""
    if principal.is_system:
        return
    if not principal.is_staff or team_id not in principal.teams:
        raise forbidden("this team")


def check_training_record(principal: Principal, staff_id: str, team_id: str) -> None:
    """Someone's course record: the learner, the college (educators, admins), partner
    systems, and managers of the learner's team, as the training service rules. Checked
    here so that a record the service would leave out reads as refused, not as missing."""
    if principal.sub == staff_id or principal.is_system:
        return
    if principal.roles & {Role.educator, Role.admin}:
        return
    if Role.manager in principal.roles and team_id in principal.teams:
        return
    raise forbidden("this colleague's course record")
