"""Re-encrypt every stored personal-data field under the newest key of FIELD_ENCRYPTION_KEYS.

Rotation: put a new key first in FIELD_ENCRYPTION_KEYS (keep the old ones after it), deploy, run this command,
then drop the old keys. Rows are re-encrypted in batches, each in its own transaction; running it twice is
harmless. Blind indexes do not change (they use BLIND_INDEX_KEY, which is not rotated this way).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from medcard import crypto
from medcard.models import Patient, User

BATCH = 500


class Command(BaseCommand):
    help = "Re-encrypt ID numbers and mobile numbers under the newest FIELD_ENCRYPTION_KEYS key."

    def handle(self, *args: Any, **options: Any) -> None:
        targets: list[tuple[Any, list[str]]] = [
            (Patient, ["id_number_ciphertext", "mobile_ciphertext"]),
            (User, ["mobile_ciphertext"]),
        ]
        for model, fields in targets:
            done = 0
            last_pk = 0
            while True:
                with transaction.atomic():
                    rows = list(
                        model.objects.select_for_update().filter(pk__gt=last_pk).order_by("pk")[:BATCH]
                    )
                    if not rows:
                        break
                    for row in rows:
                        for field in fields:
                            value = getattr(row, field)
                            if value:
                                setattr(row, field, crypto.reencrypt(value))
                    model.objects.bulk_update(rows, fields)
                    last_pk = rows[-1].pk
                    done += len(rows)
            self.stdout.write(f"{model.__name__}: {done} rows re-encrypted under the newest key.")
