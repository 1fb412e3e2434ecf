"""The loop's contract (CPython, fakes): one failure costs at most its
cycle, and the loop goes on."""
import json
import sys

import pytest

from upynode import config, node, sensors
from upynode.led import Led


class FakeTx:
    def __init__(self, fail=()):
        self.sent, self.fail, self.calls = [], set(fail), 0
        self.state_topic = "home/test/state"

    name, where = "mqtt", "mqtt test"

    def send(self, msg):
        self.calls += 1
        if self.calls in self.fail:
            return False
        self.sent.append(json.loads(json.dumps(msg)))
        return True

    def poll(self):
        pass

    def close(self):
        pass


def cfg(**over):
    d = {"wifi": {"ssid": "x"}, "mqtt": {"host": "h"}, "webrepl": {"password": "s3cret"}, "sensors": [{"type": "adc"}, {"type": "mcp9808"}],
         "led": {"mode": "threshold", "quantity": "temperature", "threshold": 20}}
    d.update(over)
    return config.parse(json.dumps(d))


def test_cycle_publishes_one_state_message_with_every_reading(world, heap):
    world.update(temperature=-3.5, light=1024)
    heap.free = 17856
    c = cfg()
    tx = FakeTx()
    assert node.cycle(7, sensors.load(c["sensors"]), Led(c["led"]), [tx], log=lambda m: None)
    msg = tx.sent[0]
    assert msg["seq"] == 7 and msg["temperature"] == -3.5
    assert msg["light"] == 100.0 and msg["light_raw"] == 1024
    assert "err" not in msg and msg["heap"] == 17856  # gc.mem_free() at the reading


def test_cycle_reports_sensor_errors_in_the_message(world):
    world["faults"] = {"mcp9808": "absent"}
    c = cfg()
    tx = FakeTx()
    node.cycle(1, sensors.load(c["sensors"]), Led(c["led"]), [tx], log=lambda m: None)
    assert tx.sent[0]["err"] == {"mcp9808": "no device"}
    assert "temperature" not in tx.sent[0] and "light" in tx.sent[0]


@pytest.mark.parametrize("target, cls, mod, other", [
    ("ha", "Ha", "upynode.ha", "upynode.flask"), ("flask", "Flask", "upynode.flask", "upynode.ha")])
def test_transports_are_named_and_only_the_configured_http_target_is_imported(world, monkeypatch, target, cls, mod,
                                                                               other):
    for m in ("upynode.http", "upynode.ha", "upynode.flask", "upynode.mqtt"):
        monkeypatch.delitem(sys.modules, m, raising=False)
    c = cfg(transports=["mqtt", "http"], http={"target": target, "url": "http://127.0.0.1:9/", "api_key": "k"},
            homeassistant={"url": "http://127.0.0.1:8123/", "token": "t"})
    c["node_id"] = "n1"
    txs = node.transports(c, [("temperature", "°C")], Led(c["led"]))
    assert [(type(t).__name__, t.name) for t in txs] == [("Mqtt", "mqtt"), (cls, target)]
    assert txs[1].where == {"ha": "ha http://127.0.0.1:8123", "flask": "flask http://127.0.0.1:9"}[target]
    assert mod in sys.modules and other not in sys.modules


def test_cycle_line_names_each_transport(world):
    class Http(FakeTx):
        name, where = "ha", "ha http://127.0.0.1:8123"
    c = cfg()
    lines = []
    node.cycle(3, sensors.load(c["sensors"]), Led(c["led"]), [FakeTx(fail={1}), Http()], lines.append)
    assert lines[-1].startswith('3: {"seq": 3, ') and lines[-1].endswith("} -> mqtt NOT SENT, ha sent")


def _run(monkeypatch, c, tx, cycles, log):
    monkeypatch.setattr(node, "transports", lambda *a, **k: [tx])
    c["node_id"] = "esp8266_test"
    return node.run(c, log=log, cycles=cycles)


def test_a_failed_publish_costs_only_its_cycle(world, monkeypatch):
    tx = FakeTx(fail={2})
    lines = []
    _run(monkeypatch, cfg(interval_s=1), tx, 3, lines.append)
    assert [m["seq"] for m in tx.sent] == [1, 3]
    assert any(line.startswith("2: ") and line.endswith("NOT SENT") for line in lines)


def test_an_unexpected_error_costs_only_its_cycle(world, monkeypatch):
    tx = FakeTx()
    real = sensors.read_all
    calls = []

    def flaky(*a, **k):
        calls.append(1)
        if len(calls) == 1:
            raise KeyError("boom")
        return real(*a, **k)
    monkeypatch.setattr(sensors, "read_all", flaky)
    lines = []
    _run(monkeypatch, cfg(interval_s=1), tx, 2, lines.append)
    assert [m["seq"] for m in tx.sent] == [2]
    assert any("1: KeyError" in line for line in lines)


def test_repeated_memory_errors_reset_the_node(world, monkeypatch):
    monkeypatch.setattr(sensors, "read_all", lambda *a, **k: (_ for _ in ()).throw(MemoryError()))
    lines = []
    with pytest.raises(SystemExit) as e:
        _run(monkeypatch, cfg(interval_s=1), FakeTx(), 10, lines.append)
    assert e.value.code == 42  # the fake machine.reset()
    assert sum("out of memory" in line for line in lines) == node.OOM_RESET


def test_gc_collect_runs_between_cycles(world, monkeypatch):
    collected = []
    monkeypatch.setattr(node.gc, "collect", lambda: collected.append(1))
    _run(monkeypatch, cfg(interval_s=1), FakeTx(), 2, lambda m: None)
    assert len(collected) >= 2


def test_mqtt_announce_requests(world):
    from upynode import mqtt
    c = cfg()
    m = mqtt.Mqtt(c["mqtt"], "n1", [("temperature", "°C")], None, lambda s: None)
    assert m.name == "mqtt" and m.where == "mqtt h:1883"
    assert m.announce == mqtt._CHANGED  # the first connect announces only what changed since the last one
    m._message(b"homeassistant/status", b"online")
    assert m.announce == mqtt._AGAIN  # HA restarted: everything again
    raw = mqtt.Mqtt(dict(c["mqtt"], format="raw"), "n1", [("temperature", "°C")], None, lambda s: None)
    assert raw.announce == mqtt._NOTHING  # no discovery in raw format: nothing to announce
