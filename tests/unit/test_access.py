"""The pure role rules in services/access.py, every function against every role."""

from __future__ import annotations

import uuid

import pytest

from workbay.common.errors import InsufficientPrivilege, ObjectNotFound
from workbay.manager.services import access
from workbay.manager.services.access import Actor


def actor(role: str, domain: str = "default") -> Actor:
    return Actor(user_id=uuid.uuid4(), email=f"{role}@x.test", role=role, domain_name=domain,
                 access_key="AKIA" + "X" * 16)


SUPER, ADMIN, USER, MONITOR = (actor(r) for r in ("superadmin", "admin", "user", "monitor"))
OTHER_ADMIN = actor("admin", "other")
OTHER_MONITOR = actor("monitor", "other")


def allowed(fn, *args) -> bool | type:
    try:
        fn(*args)
    except InsufficientPrivilege:
        return False
    except ObjectNotFound:
        return ObjectNotFound
    return True


def test_roles_are_the_four_of_backend_ai():
    assert access.ROLES == ("superadmin", "admin", "user", "monitor")


@pytest.mark.parametrize("who, superadmin, admin", [
    (SUPER, True, True), (ADMIN, False, True), (USER, False, False), (MONITOR, False, False),
])
def test_actor_flags(who, superadmin, admin):
    assert who.is_superadmin is superadmin
    assert who.is_admin is admin


@pytest.mark.parametrize("who, expected", [
    (SUPER, True), (ADMIN, False), (OTHER_ADMIN, False), (USER, False), (MONITOR, False),
])
def test_require_superadmin(who, expected):
    assert allowed(access.require_superadmin, who) is expected


@pytest.mark.parametrize("who, expected", [
    (SUPER, True), (ADMIN, True), (OTHER_ADMIN, True), (USER, False), (MONITOR, False),
])
def test_require_admin(who, expected):
    assert allowed(access.require_admin, who) is expected


@pytest.mark.parametrize("who, expected", [
    (SUPER, True), (ADMIN, True), (OTHER_ADMIN, True), (USER, False), (MONITOR, True),
])
def test_require_reader(who, expected):
    assert allowed(access.require_reader, who) is expected


@pytest.mark.parametrize("who, expected", [
    (SUPER, None), (ADMIN, "default"), (OTHER_ADMIN, "other"), (USER, "default"),
    (MONITOR, "default"), (OTHER_MONITOR, "other"),
])
def test_domain_scope(who, expected):
    assert access.domain_scope(who) == expected


@pytest.mark.parametrize("who, domain, expected", [
    (SUPER, "default", True), (SUPER, "other", True),
    (ADMIN, "default", True), (ADMIN, "other", ObjectNotFound),
    (OTHER_ADMIN, "default", ObjectNotFound), (OTHER_ADMIN, "other", True),
    (MONITOR, "default", True), (MONITOR, "other", ObjectNotFound),
    (USER, "default", True), (USER, "other", ObjectNotFound),
])
def test_check_domain_visible(who, domain, expected):
    assert allowed(access.check_domain_visible, who, domain, "user") is expected


def test_invisible_objects_are_reported_by_their_name():
    with pytest.raises(ObjectNotFound) as e:
        access.check_domain_visible(OTHER_ADMIN, "default", "project")
    assert e.value.status == 404 and e.value.title == "No such project."


@pytest.mark.parametrize("who, domain, expected", [
    (SUPER, "default", True), (SUPER, "other", True),
    (ADMIN, "default", True), (ADMIN, "other", ObjectNotFound),
    (OTHER_ADMIN, "default", ObjectNotFound),
    (USER, "default", False), (USER, "other", False),          # privilege first: 403, not 404
    (MONITOR, "default", False), (MONITOR, "other", False),
])
def test_check_may_manage_domain(who, domain, expected):
    assert allowed(access.check_may_manage_domain, who, domain, "user") is expected


@pytest.mark.parametrize("who, role, expected", [
    (SUPER, "superadmin", True), (SUPER, "admin", True), (SUPER, "user", True), (SUPER, "monitor", True),
    (ADMIN, "superadmin", False), (ADMIN, "admin", True), (ADMIN, "user", True), (ADMIN, "monitor", True),
])
def test_check_role_grant(who, role, expected):
    assert allowed(access.check_role_grant, who, role) is expected


def test_check_role_grant_refuses_unknown_roles():
    with pytest.raises(ValueError):
        access.check_role_grant(SUPER, "root")


@pytest.mark.parametrize("who, target_role, target_domain, expected", [
    (SUPER, "superadmin", "default", True), (SUPER, "user", "other", True),
    (ADMIN, "user", "default", True), (ADMIN, "admin", "default", True),
    (ADMIN, "monitor", "default", True),
    (ADMIN, "superadmin", "default", False),                   # cannot touch a superadmin
    (ADMIN, "user", "other", ObjectNotFound),
    (OTHER_ADMIN, "user", "default", ObjectNotFound),
    (USER, "user", "default", False), (MONITOR, "user", "default", False),
])
def test_check_may_modify_user(who, target_role, target_domain, expected):
    assert allowed(access.check_may_modify_user, who, target_role, target_domain) is expected


@pytest.mark.parametrize("who, owner_role, owner_domain, expected", [
    (SUPER, "superadmin", "default", True), (SUPER, "user", "other", True),
    (ADMIN, "user", "default", True), (ADMIN, "admin", "default", True),
    (ADMIN, "superadmin", "default", False),                   # no way up to superadmin
    (ADMIN, "user", "other", False), (OTHER_ADMIN, "user", "default", False),
    (MONITOR, "user", "default", False), (USER, "user", "default", False),
])
def test_may_see_secret_key(who, owner_role, owner_domain, expected):
    assert access.may_see_secret_key(who, uuid.uuid4(), owner_role, owner_domain) is expected


@pytest.mark.parametrize("who", [SUPER, ADMIN, USER, MONITOR])
def test_everyone_sees_their_own_secret_key(who):
    assert access.may_see_secret_key(who, who.user_id, who.role, who.domain_name)


# -- sessions: who sees, who changes, and the allowed_actions the WebUI shows ------------------------
OWNER = actor("user")
EVERY_ACTION = ("download", "exec", "logs", "open_app", "rename", "restart", "terminate")


def session_of(owner: Actor, domain: str = "default") -> tuple[uuid.UUID, str, str]:
    return owner.user_id, owner.access_key, domain


@pytest.mark.parametrize("who, sees, changes", [
    (OWNER, True, True), (SUPER, True, True), (ADMIN, True, True), (MONITOR, True, False),
    (USER, False, False), (OTHER_ADMIN, False, False), (OTHER_MONITOR, False, False),
])
def test_who_sees_and_changes_a_session(who, sees, changes):
    owner_id, _, domain = session_of(OWNER)
    key = "AKIA" + "O" * 16  # the owner's, not the caller's
    assert access.may_see_session(who, owner_id, key, domain) is sees
    assert access.may_change_session(who, owner_id, key, domain) is changes


@pytest.mark.parametrize("status, expected", [
    ("RUNNING", EVERY_ACTION),
    ("PENDING", ("logs", "terminate")), ("PREPARING", ("logs", "terminate")),
    ("RUNNING_DEGRADED", ("logs", "terminate")), ("TERMINATING", ("logs", "terminate")),
    ("TERMINATED", ("logs",)), ("ERROR", ("logs",)), ("CANCELLED", ("logs",)),
])
def test_session_actions_follow_the_status(status, expected):
    owner_id, _, domain = session_of(OWNER)
    assert access.session_actions(OWNER, owner_id, "AKIA" + "O" * 16, domain, status) == expected


@pytest.mark.parametrize("who, expected", [
    (SUPER, EVERY_ACTION), (ADMIN, EVERY_ACTION), (MONITOR, ("logs",)), (USER, ()), (OTHER_ADMIN, ()),
])
def test_session_actions_follow_the_role(who, expected):
    owner_id, _, domain = session_of(OWNER)
    assert access.session_actions(who, owner_id, "AKIA" + "O" * 16, domain, "RUNNING") == expected


def test_session_actions_are_sorted_and_from_the_vocabulary():
    got = access.session_actions(OWNER, OWNER.user_id, OWNER.access_key, "default", "RUNNING")
    assert list(got) == sorted(got) and set(got) == {a.value for a in access.SessionAction}


def test_every_public_function_is_covered():
    tested = {"require_superadmin", "require_admin", "require_reader", "domain_scope",
              "check_domain_visible", "check_may_manage_domain", "check_role_grant",
              "check_may_modify_user", "may_see_secret_key", "may_see_session", "may_change_session",
              "session_actions"}
    public = {name for name, obj in vars(access).items()
              if callable(obj) and not name.startswith("_") and getattr(obj, "__module__", "") == access.__name__
              and not isinstance(obj, type)}
    assert public == tested, f"new rules need tests: {public - tested}"
