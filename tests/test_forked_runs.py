"""The suite's forked runs behave as fresh processes do (conftest's
run_python, tests/forked_runs.py)."""

import subprocess
import sys

import pytest
from conftest import run_python

SCRIPT = """
import os, sys
print("argv", sys.argv[1:], "cwd", os.getcwd(), "name", __name__)
print("to stderr", file=sys.stderr)
if sys.argv[1] == "exit":
    sys.exit("script: error: one line")
if sys.argv[1] == "raise":
    raise ValueError("boom")
if sys.argv[1] == "sleep":
    import time
    time.sleep(60)
"""


@pytest.mark.parametrize("fresh", [False, True])
def test_a_forked_run_is_what_a_fresh_process_gives(tmp_path, fresh):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    ok = run_python(script, "ok", "x", cwd=tmp_path, fresh=fresh)
    assert ok.returncode == 0 and ok.args[0] == sys.executable
    assert ok.stdout == (f"argv ['ok', 'x'] cwd {tmp_path} name __main__\n")
    assert ok.stderr == "to stderr\n"
    out = run_python(script, "exit", cwd=tmp_path, fresh=fresh)
    assert out.returncode == 1
    assert out.stderr.splitlines() == ["to stderr", "script: error: one line"]
    out = run_python(script, "raise", cwd=tmp_path, fresh=fresh)
    assert out.returncode == 1
    assert "Traceback" in out.stderr and "ValueError: boom" in out.stderr
    with pytest.raises(subprocess.TimeoutExpired):
        run_python(script, "sleep", cwd=tmp_path, timeout=2, fresh=fresh)
    # A module run (python -m), and the server still serves after a kill.
    out = run_python("-m", "speechbrain_grl.inference.predict", "--help",
                     fresh=fresh)
    assert out.returncode == 0 and "--precision" in out.stdout
