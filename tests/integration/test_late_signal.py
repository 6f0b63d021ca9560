"""A stop signal that lands after the pool has stopped does not kill the exiting process.

`worker stop` asks through the store and then signals: the pool may take the first,
finish and unregister before the signal arrives. A pool that owns its process (the CLI)
leaves SIGTERM ignored on its way out, so such a pool still exits 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import os, signal, sys
from queuectl.store.factory import open_store
from queuectl.pool import Pool
Pool(open_store(sys.argv[1]), 1, burst=True, log=None, owns_process=sys.argv[2] == "owns").run()
os.kill(os.getpid(), signal.SIGTERM)  # the late signal of a stop already taken
print("exited on its own", flush=True)
"""


@pytest.mark.parametrize(("owns", "code"), [("owns", 0), ("embedded", -15)])
def test_a_late_sigterm_after_the_pool_stopped(tmp_path: Path, owns: str, code: int) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "q.db"), owns],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state")),
    )
    assert done.returncode == code, done.stderr
    assert ("exited on its own" in done.stdout) == (code == 0)
