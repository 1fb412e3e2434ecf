"""upynode config over WebREPL (--host), against a node's WebREPL served from
inside the virtual board's MicroPython VM (the webrepl_node fixture,
conftest.py), main.py running; --reset reboots the VM. Over USB (--port)
see test_cli_config_serial.py."""
import json
import socket
import sys
import time
from contextlib import contextmanager

import pytest

from helpers import cli as run_cli, one_line_error  # noqa: F401
from upynode_vboard.services import free_port

vm = pytest.mark.vm  # the tests that run a node; the others check before connecting
PASSWORD = "s3cret"  # the webrepl_node fixture's
CONFIG = {
    "wifi": {"ssid": "home", "password": "hunter22"},
    "mqtt": {"host": "192.168.1.10", "password": "mqttpw"},
    "webrepl": {"password": PASSWORD},
    "interval_s": 60,
}


def cli(*args, password=PASSWORD, **kw):
    return run_cli(*args, password=password, **kw)


@pytest.fixture
def node(webrepl_node):
    # CONFIG is only data on this node: its main.py dials nothing.
    return webrepl_node({"config.json": json.dumps(CONFIG)})


def at(port):
    return "127.0.0.1:%d" % port


def on(node, *args, **kw):
    action, rest = args[0], args[1:]
    return cli("config", action, "--host", node.host, *rest, **kw)


def board_config(node):
    return json.loads((node.dir / "config.json").read_text())


def config_file(node):
    """config.json's (inode, bytes): a new inode means it was renamed over."""
    p = node.dir / "config.json"
    return p.stat().st_ino, p.read_bytes()


@contextmanager
def silent_server():
    """A TCP port that accepts connections and never answers: for timeouts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)  # the kernel completes the handshake; nobody ever reads
        yield s.getsockname()[1]


# -- get ---------------------------------------------------------------------
@vm
def test_get_masks_secrets(node):
    r = on(node, "get")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["wifi"] == {"ssid": "home", "password": "***"}
    assert got["mqtt"]["password"] == "***" and got["webrepl"]["password"] == "***"
    assert "hunter22" not in r.stdout + r.stderr
    assert node.main_running()  # reading a file does not stop the node's loop


@vm
def test_get_show_secrets(node):
    r = on(node, "get", "--show-secrets")
    assert r.returncode == 0 and json.loads(r.stdout) == CONFIG


@vm
def test_get_warns_about_an_invalid_config(node):
    (node.dir / "config.json").write_text(json.dumps({"wifi": {"ssid": ""}}))
    r = on(node, "get")
    assert r.returncode == 0 and "warning" in r.stderr and "wifi.ssid" in r.stderr


@vm
def test_get_without_config_on_the_node(node):
    # A node cannot open it: it drops the connection without an answer.
    (node.dir / "config.json").unlink()
    one_line_error(on(node, "get"), "cannot read config.json", node.host,
                   "dropped the connection", "no such file?")


# -- set ---------------------------------------------------------------------
@vm
def test_set_changes_keys_atomically(node):
    before, _ = config_file(node)
    r = on(node, "set", "interval_s=30", "wifi.ssid=1234", 'mqtt.base_topic="garden"', "led.invert=false")
    assert r.returncode == 0, r.stderr
    cfg = board_config(node)
    assert cfg["interval_s"] == 30
    assert cfg["wifi"] == {"ssid": "1234", "password": "hunter22"}  # a string key stays a string
    assert cfg["mqtt"]["base_topic"] == "garden" and cfg["led"] == {"invert": False}
    assert config_file(node)[0] != before  # written beside, then renamed over
    assert not (node.dir / "config.json.tmp").exists()
    assert "--reset" in r.stderr and "KeyboardInterrupt" in node.output()  # main.py stopped
    assert not node.main_running(timeout=1) and node.resets == 0


@vm
def test_set_is_validated_before_anything_is_sent(node):
    before = config_file(node)
    one_line_error(on(node, "set", "interval_s=0"), "interval_s = 0", "from 1 to 86400")
    one_line_error(on(node, "set", "mqtt.nosuchkey=1"), "mqtt.nosuchkey", "unknown key")
    one_line_error(on(node, "set", "webrepl.password=ab"), "webrepl.password", "4 to 9")
    one_line_error(on(node, "set", "novalue"), "KEY=VALUE")
    assert config_file(node) == before and not (node.dir / "config.json.tmp").exists()


@vm
def test_set_list_items(node):
    (node.dir / "config.json").write_text(json.dumps(
        dict(CONFIG, sensors=[{"type": "mcp9808"}])))
    assert on(node, "set", "sensors.0.prefix=porch_").returncode == 0
    assert board_config(node)["sensors"] == [{"type": "mcp9808", "prefix": "porch_"}]
    one_line_error(on(node, "set", "sensors.3.prefix=x"), "no list item 3")


@vm
def test_set_with_reset_is_seen_after_the_reset(node):
    r = on(node, "set", "interval_s=120", "--reset")
    assert r.returncode == 0, r.stderr
    node.up(boot=2)  # the VM rebooted: boot.py, WebREPL, main.py
    assert node.resets == 1
    r = on(node, "get")  # a new connection, after the reboot
    assert json.loads(r.stdout)["interval_s"] == 120


@vm
def test_dropped_connection_never_leaves_a_half_written_config(node):
    before = config_file(node)
    node.vb.world(faults={"webrepl_put_drop_after": 20})  # the WiFi link dies 20 bytes into a put
    one_line_error(on(node, "set", "interval_s=90"), "lost", node.host)
    assert config_file(node) == before
    assert len((node.dir / "config.json.tmp").read_bytes()) == 20  # the wreck is beside it
    # and once the link is back the next attempt goes through
    node.vb.world(faults={})
    assert on(node, "set", "interval_s=90").returncode == 0
    assert board_config(node)["interval_s"] == 90


# -- put / edit -------------------------------------------------------------
@vm
def test_put_uploads_a_validated_file(node, tmp_path):
    new = dict(CONFIG, interval_s=15)
    f = tmp_path / "new.json"
    f.write_text(json.dumps(new, indent=1))
    r = on(node, "put", f)
    assert r.returncode == 0, r.stderr
    assert (node.dir / "config.json").read_text() == f.read_text()


def test_put_rejects_invalid_files_before_connecting(tmp_path):
    f = tmp_path / "bad.json"
    f.write_text('{"wifi": {"ssid": "x"}, "mqtt": {"host": "h"}, "interval_s": "often"}')
    host = at(free_port())  # nothing listens: validation must fail first
    one_line_error(cli("config", "put", f, "--host", host), "bad.json is not valid", "interval_s")
    f.write_text("{not json")
    one_line_error(cli("config", "put", f, "--host", host), "not valid JSON")
    one_line_error(cli("config", "put", tmp_path / "missing.json", "--host", host), "cannot read")


def test_an_unknown_sensor_type_names_every_driver_the_firmware_has(tmp_path):
    # The host loads the firmware's config module from lib/, not from its
    # sys.path: the list of types must come from the package's own folder.
    f = tmp_path / "cfg.json"
    f.write_text(json.dumps(dict(CONFIG, sensors=[{"type": "bme280"}])))
    one_line_error(cli("config", "put", f, "--host", at(free_port())),
                   'sensors[0].type = "bme280"', "adc, dht11, dht22, ds18b20, mcp9808")


def editor(tmp_path, code):
    script = tmp_path / "editor.py"
    script.write_text("import json, sys\np = sys.argv[1]\nc = json.load(open(p))\n%s\n"
                      "json.dump(c, open(p, 'w'))\n" % code)
    return {"EDITOR": "%s %s" % (sys.executable, script), "VISUAL": ""}


@vm
def test_edit(node, tmp_path):
    r = on(node, "edit", "--reset", env=editor(tmp_path, "c['interval_s'] = 45"))
    assert r.returncode == 0, r.stderr
    assert board_config(node)["interval_s"] == 45
    node.up(boot=2)
    assert node.resets == 1


@vm
def test_edit_without_change_writes_nothing(node, tmp_path):
    before = config_file(node)
    r = on(node, "edit", env={"EDITOR": "true", "VISUAL": ""})
    assert r.returncode == 0 and "no change" in r.stderr and config_file(node) == before


@vm
def test_edit_to_an_invalid_config_writes_nothing(node, tmp_path):
    before = config_file(node)
    one_line_error(on(node, "edit", env=editor(tmp_path, "c['wifi']['ssid'] = ''")), "wifi.ssid")
    assert config_file(node) == before and board_config(node) == CONFIG


# -- connection errors ---------------------------------------------------------
@vm
def test_wrong_password(node):
    one_line_error(on(node, "get", password="wrong"), "wrong WebREPL password")
    assert on(node, "get").returncode == 0  # the node dropped that client, not its WebREPL


def test_connection_refused():
    port = free_port()
    one_line_error(cli("config", "get", "--host", at(port)),
                   "connection refused", "127.0.0.1:%d" % port)


def test_host_with_a_port_is_one_address():
    # Was a traceback: "Port could not be cast to integer value as '9:8266'".
    one_line_error(cli("config", "get", "--host", "127.0.0.1:9"), "connection refused", "127.0.0.1:9")


def test_bad_host():
    one_line_error(cli("config", "get", "--host", "127.0.0.1:x"), "bad port number 'x'", "127.0.0.1:x")


def test_port_is_a_serial_device_as_in_deploy():
    one_line_error(cli("config", "get", "--port", "/dev/ttyUSB-upynode-none"), "no such port")
    one_line_error(cli("config", "set", "interval_s=5", "--port", "8266"), "no such port 8266")


def test_port_or_host_not_both():
    r = cli("config", "get", "--port", "/dev/null", "--host", "127.0.0.1")
    assert r.returncode == 2 and "not allowed with" in r.stderr
    r = cli("config", "get")
    assert r.returncode == 2 and "--port" in r.stderr and "--host" in r.stderr


def test_timeout():
    with silent_server() as port:
        t = time.monotonic()
        one_line_error(cli("config", "get", "--host", at(port), "--timeout", "1"), "timed out")
        assert time.monotonic() - t < 15


@vm
def test_password_never_on_the_command_line(node):
    r = cli("config", "get", "--host", node.host, "--password", "x")
    assert r.returncode == 2 and "unrecognized arguments: --password" in r.stderr
    # no env var and no terminal to ask on: a clear error, not a hang
    one_line_error(on(node, "get", password=None), "UPYNODE_WEBREPL_PASSWORD")
