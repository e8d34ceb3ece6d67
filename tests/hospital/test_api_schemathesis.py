"""Schemathesis, every check, against the API on a live test server: the schema tells the truth.

The CLI runs as a user would run it (``schemathesis run <schema> --checks all``), once per kind of caller, on
the demo data: a patient (the patient API, sign-in, discovery), a pharmacist (dosing), front-desk staff (desk
and staff operations) and a clinician (screening review). Bounded (a fixed seed and a few examples per
operation, so CI takes a minute or two); ``API_TEST_EXAMPLES`` raises the count for a deeper run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils.crypto import get_random_string

from medcard.models import User

pytestmark = pytest.mark.timeout(900)
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("API_TEST_EXAMPLES", "10"))

# Who calls which part of the API (a regular expression over paths), by demo login.
CALLERS = {
    "patient": ("13800138000", r"^/api/v1/(auth|me|patients|bookings|departments|sessions|card-tokens)"),
    "pharmacist": ("pharmacist", r"^/api/v1/dosing/"),
    "front_desk": ("desk", r"^/api/v1/(desk|staff/(bookings|sessions|slots))/"),
    "clinician": ("radiology", r"^/api/v1/staff/screening/"),
}


def _session_cookie(user: User) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


@pytest.mark.parametrize("caller", sorted(CALLERS))
def test_schemathesis_with_every_check_passes(
    caller: str, live_server: Any, transactional_db: None, tmp_path: Path
) -> None:
    call_command("seed_demo", verbosity=0)
    login, paths = CALLERS[caller]
    user = User.objects.get_by_mobile(login) if login.isdigit() else User.objects.get(username=login)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "API_TEST_SESSION": _session_cookie(user),
        "API_TEST_CSRF_TOKEN": get_random_string(32),  # a CSRF secret is 32 letters and digits
        "API_TEST_BASE_URL": live_server.url,
    }
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file", str(ROOT / "tests/hospital/schemathesis.toml"), "run",
        f"{live_server.url}/api/schema/", "--checks", "all", "--include-path-regex", paths,
        "--max-examples", str(EXAMPLES), "--seed", "20261207", "--no-color",
        "--report", "junit", "--report-dir", str(tmp_path / "report"),
    ]  # fmt: skip
    run = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=840)
    (Path(os.environ.get("API_TEST_LOG_DIR", tmp_path)) / f"schemathesis-{caller}.txt").write_text(run.stdout)
    summary = run.stdout[-6000:]
    print(summary)
    assert run.returncode == 0, (
        f"schemathesis found problems as {caller}:\n{run.stdout[-20000:]}\n{run.stderr[-2000:]}"
    )
    assert "Authentication failed" not in run.stdout, f"{caller}'s session was refused:\n{summary}"
