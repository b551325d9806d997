"""The roles people hold in VelaOps, as Django groups with permissions.

viewer reads; operator also runs actions; approver also approves destructive
actions (an approver does not act, so approval stays a second pair of eyes).
Superusers can do everything.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

VIEWER, OPERATOR, APPROVER = "viewer", "operator", "approver"
SUPERUSER = "superuser"

VIEW_PERMISSION = "dashboard.view_environment"
OPERATE_PERMISSION = "dashboard.operate_environment"
APPROVE_PERMISSION = "dashboard.approve_destructive"

# codenames in the dashboard app for each group; the data migration installs them.
GROUP_PERMISSIONS: dict[str, list[str]] = {
    VIEWER: ["view_environment"],
    OPERATOR: ["view_environment", "operate_environment"],
    APPROVER: ["view_environment", "approve_destructive"],
}

ROLES = [VIEWER, OPERATOR, APPROVER, SUPERUSER]


def install_groups(group_model, permission_model) -> None:
    """Create or complete the role groups; idempotent. Takes the models so migrations can pass historical ones."""
    for name, codenames in GROUP_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=name)
        permissions = permission_model.objects.filter(content_type__app_label="dashboard", codename__in=codenames)
        group.permissions.add(*permissions)


def can_view(user: AbstractBaseUser | AnonymousUser) -> bool:
    return user.has_perm(VIEW_PERMISSION)


def can_operate(user: AbstractBaseUser | AnonymousUser) -> bool:
    return user.has_perm(OPERATE_PERMISSION)


def can_approve(user: AbstractBaseUser | AnonymousUser) -> bool:
    return user.has_perm(APPROVE_PERMISSION)
