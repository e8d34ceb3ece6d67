"""The platform on several hosts (network namespaces on this machine): the CI variant of bench/multihost.py.

It needs root, ``ip netns``, haproxy, pgbouncer, redis-server and PostgreSQL's server binaries (CI installs
them: .ci/run); elsewhere it skips, saying why. Two to three and a half minutes: 80 patients, 30 numbers in
the failover surge, one web host and one worker host killed mid-run.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_or_skip

pytestmark = [pytest.mark.multihost, pytest.mark.timeout(400)]
ROOT = Path(__file__).resolve().parents[2]


def test_the_surge_on_two_web_hosts_loses_nothing_when_a_web_host_and_a_worker_host_die() -> None:
    sys.path.insert(0, str(ROOT))
    from bench.multihost import preflight

    why = preflight()
    require_or_skip(why is None, f"multi-host run: {why}")
    done = subprocess.run(
        [sys.executable, "bench/multihost.py", "--patients", "80", "--capacity", "30", "--clients", "16",
         "--timeout", "330"],
        cwd=ROOT, capture_output=True, text=True, timeout=380, check=False,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, out[-4000:] + done.stderr[-4000:]
    assert "a session signed in once is valid on web1 and web2: True" in out
    assert "web2 answers from the shared hint before Django (409, shield: True)" in out
    assert "oversold 0" in out and "paid but not booked: 0" in out
    assert "hosts killed during the run: web2, worker2" in out
    assert "cleaned up (11 namespaces)" in out
    tag = re.search(r"the network namespaces (\S+)-\*", out).group(1)  # type: ignore[union-attr]
    leftover = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    assert f"{tag}-" not in leftover
