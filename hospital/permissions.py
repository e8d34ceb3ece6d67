"""What the administrator role may do in the admin, across the apps: manage departments, doctors, schedules,
sessions, booking and queue rules, refunds (the "Refund by hand" action needs ``change_payment``) and the
screening settings; read, never change, accounts, patients (masked, and every patient page opened is
audited), cards, the audit trail and the messages sent. It deletes configuration only (a department or
doctor nothing refers to, a weekly template, whose booked sessions stay, a rule, a screening setting; each
deletion audited): sessions are cancelled, not deleted, and anything a patient or the gateway gave stays.

The grants are set after every ``migrate`` (so a new model's permissions reach the role at once) and only
ever added: permissions a superuser gives the group by hand are kept."""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from medcard import roles

ADMINISTRATOR_GRANTS: dict[str, tuple[str, ...]] = {
    "reservations": ("add", "change", "view"),
    "screening": ("add", "change", "view"),
    "medcard": ("view",),
}
ADMINISTRATOR_DELETES: dict[str, tuple[str, ...]] = {
    "reservations": ("department", "doctor", "clinictype", "weeklytemplate", "bookingrule", "queuerule"),
    "screening": ("screeningexamsetting",),
}


def administrator_permissions_sync(*, using: str = "default") -> int:
    """Give the administrator group the permissions above; returns how many it has from them."""
    # Here, not at the top: this module is imported while the apps load, before auth's models can be.
    from django.contrib.auth.models import Group, Permission

    group, _ = Group.objects.using(using).get_or_create(name=roles.ADMINISTRATOR)
    wanted = Q(pk__in=[])
    for app_label, actions in ADMINISTRATOR_GRANTS.items():
        wanted |= Q(content_type__app_label=app_label, codename__regex=rf"^({'|'.join(actions)})_")
    for app_label, models in ADMINISTRATOR_DELETES.items():
        wanted |= Q(content_type__app_label=app_label, codename__in=[f"delete_{model}" for model in models])
    permissions = list(Permission.objects.using(using).filter(wanted))
    group.permissions.add(*permissions)
    return len(permissions)


def after_migrate(*, using: str = "default", **_: Any) -> None:
    """The post_migrate receiver (connected for the last of the apps named above, so that Django has made
    every permission it grants by then)."""
    administrator_permissions_sync(using=using)
