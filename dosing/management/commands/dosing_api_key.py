"""Manage other institutions' API keys: create (the clear key is printed once), revoke, list."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dosing import services
from dosing.models import ApiKey, Institution


class Command(BaseCommand):
    help = "Create, revoke or list the dosing API keys of other institutions."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Create a key (and the institution when new).")
        create.add_argument("--institution", required=True, help="Institution code, e.g. renji-east")
        create.add_argument("--institution-name", default="", help="Its name, when the institution is new")
        create.add_argument("--name", required=True, help="What the key is for, e.g. 'HIS production'")
        revoke = sub.add_parser("revoke", help="Revoke a key by its prefix (shown by list).")
        revoke.add_argument("prefix")
        sub.add_parser("list", help="List the keys (prefix, institution, name, created, revoked, last used).")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "create":
            institution, _ = Institution.objects.get_or_create(
                code=options["institution"],
                defaults={"name": options["institution_name"] or options["institution"]},
            )
            key, clear = services.api_key_create(institution=institution, name=options["name"])
            self.stdout.write(f"prefix {key.prefix} for {institution.code}")
            self.stdout.write(f"key (shown once; only its hash is stored): {clear}")
        elif action == "revoke":
            if not services.api_key_revoke(prefix=options["prefix"]):
                raise CommandError(f"no active key with prefix {options['prefix']}")
            self.stdout.write(f"revoked {options['prefix']}")
        else:
            for key in ApiKey.objects.select_related("institution"):
                self.stdout.write(
                    f"{key.prefix}\t{key.institution.code}\t{key.name}\t{key.created_at:%Y-%m-%d}\t"
                    f"{'revoked ' + format(key.revoked_at, '%Y-%m-%d') if key.revoked_at else 'active'}\t"
                    f"{key.last_used_at or '-'}"
                )
