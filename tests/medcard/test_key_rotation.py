from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import call_command
from django.db import connection

from medcard import crypto
from medcard.models import Patient, User


@pytest.mark.django_db
def test_rotation_re_encrypts_everything_under_the_new_key(patient: User, settings) -> None:  # type: ignore[no-untyped-def]
    holder = Patient.objects.get(links__account=patient)
    id_number, mobile = holder.id_number, patient.mobile
    old_keys = list(settings.FIELD_ENCRYPTION_KEYS)
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, *old_keys]
    out = io.StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    assert "Patient: 1 rows" in out.getvalue()
    with connection.cursor() as cursor:
        cursor.execute("SELECT id_number_ciphertext FROM medcard_patient WHERE id = %s", [holder.pk])
        (ciphertext,) = cursor.fetchone()
    assert Fernet(new_key.encode()).decrypt(ciphertext.encode()).decode() == id_number
    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key is dropped: everything still reads
    holder.refresh_from_db()
    patient.refresh_from_db()
    assert (holder.id_number, patient.mobile) == (id_number, mobile)
    settings.FIELD_ENCRYPTION_KEYS = old_keys  # and the old key alone no longer reads the data
    with pytest.raises(InvalidToken):
        crypto.decrypt(ciphertext)
