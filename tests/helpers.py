"""What several test groups share: a node config for the virtual board, and
running the `upynode` command as a user does."""
import os
import re
import subprocess
import sys

HOME_AP = {"home": {"password": "secret123"}}
# The node id of a virtual board with the fake world's default chip: tests
# name the node through this, not by its digits.
NODE_ID = "esp8266_a1b2c3d4"


def node_config(port, **over):
    """A config for the virtual board's home WiFi and the test broker."""
    cfg = {"wifi": {"ssid": "home", "password": "secret123", "timeout_s": 3, "retries": 2},
           "webrepl": {"password": "s3cret"},
           "interval_s": 1,
           "mqtt": {"host": "127.0.0.1", "port": port},
           "sensors": [{"type": "adc"}, {"type": "mcp9808"}]}
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k] = dict(cfg[k], **v)
        else:
            cfg[k] = v
    return cfg


def upynode_exe():
    """The `upynode` console script of the venv the tests run in."""
    return os.path.join(os.path.dirname(sys.executable), "upynode")


def cli(*args, password=None, timeout=120, env=None):
    """`upynode ARGS` in a subprocess, with no terminal; the WebREPL
    password, if any, comes from the environment as a user would give it."""
    e = dict(os.environ)
    e.pop("UPYNODE_WEBREPL_PASSWORD", None)
    if password is not None:
        e["UPYNODE_WEBREPL_PASSWORD"] = password
    e.update(env or {})
    return subprocess.run([upynode_exe(), *map(str, args)],
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
