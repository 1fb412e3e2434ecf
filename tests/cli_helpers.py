"""Running tools/upynode as a user does, and reading its answers."""
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cli(*args, password=None, timeout=120, env=None):
    """tools/upynode ARGS in a subprocess, with no terminal; the WebREPL
    password, if any, comes from the environment as a user would give it."""
    e = dict(os.environ)
    e.pop("UPYNODE_WEBREPL_PASSWORD", None)
    if password is not None:
        e["UPYNODE_WEBREPL_PASSWORD"] = password
    e.update(env or {})
    return subprocess.run([sys.executable, str(REPO / "tools" / "upynode"), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=e,
                          stdin=subprocess.DEVNULL)


def one_line_error(r, *words):
    """Failed, with one `upynode ...: error:` line naming the words, and no traceback."""
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("upynode ") and "error:" in ln]
    assert len(errors) == 1, r.stderr
    for w in words:
        assert w in errors[0], errors[0]
    return errors[0]


def deploy_summary(r):
    """(sent, unchanged, removed) from deploy's last words."""
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"upynode: (\d+) sent \(\d+ B\), (\d+) unchanged, (\d+) removed", r.stderr)
    assert m, r.stderr
    return tuple(map(int, m.groups()))
