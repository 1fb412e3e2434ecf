"""The loop's contract (CPython, fakes): one failure costs at most its
cycle, a reading no sink acknowledged waits on flash until one does, and
the loop goes on."""
import json
import sys

import network
import pytest

from upynode import assemble, config, node, sensors, sleep
from upynode.led import Led

REAL_TRANSPORTS = assemble.transports


class FakeTx:
    """A sink that keeps history (as MQTT does): `down` makes it fail."""
    history = True

    def __init__(self, fail=()):
        self.sent, self.fail, self.calls = [], set(fail), 0
        self.replayed, self.down, self.replay_ok = [], False, None

    name, where = "mqtt", "mqtt test"

    def send(self, msg, text):
        self.calls += 1
        if self.down or self.calls in self.fail:
            return False
        assert json.loads(text) == json.loads(json.dumps(msg))
        self.sent.append(json.loads(text))
        return True

    def replay(self, records):
        n = len(records) if self.replay_ok is None else min(self.replay_ok, len(records))
        self.replayed += [json.loads(r) for r in records[:n]]
        return n

    def poll(self):
        pass

    def close(self):
        pass


def cfg(**over):
    d = {"wifi": {"ssid": "x"}, "mqtt": {"host": "127.0.0.1"}, "webrepl": {"password": "s3cret"}, "sensors": [{"type": "adc"}, {"type": "mcp9808"}],
         "led": {"mode": "threshold", "quantity": "temperature", "threshold": 20}}
    d.update(over)
    return config.parse(json.dumps(d))


@pytest.mark.parametrize("target, cls, mod, other", [
    ("ha", "Ha", "upynode.ha", "upynode.flask"), ("flask", "Flask", "upynode.flask", "upynode.ha")])
def test_transports_are_named_and_only_the_configured_http_target_is_imported(world, monkeypatch, target, cls, mod,
                                                                               other):
    for m in ("upynode.http", "upynode.ha", "upynode.flask", "upynode.mqtt"):
        monkeypatch.delitem(sys.modules, m, raising=False)
    c = cfg(transports=["mqtt", "http"], http={"target": target, "url": "http://127.0.0.1:9/", "api_key": "k"},
            homeassistant={"url": "http://127.0.0.1:8123/", "token": "t"},
            mqtt={"host": "127.0.0.1", "discovery": False})  # HA by both with discovery: refused
    c["node_id"] = "n1"
    txs = assemble.transports(c, [("temperature", "°C")], Led(c["led"]))
    assert [(type(t).__name__, t.name) for t in txs] == [("Mqtt", "mqtt"), (cls, target)]
    assert txs[1].where == {"ha": "ha http://127.0.0.1:8123", "flask": "flask http://127.0.0.1:9"}[target]
    assert mod in sys.modules and other not in sys.modules



@pytest.mark.parametrize("target", ["ha", "flask", "receiver"])
def test_a_password_in_the_http_url_never_reaches_the_log(world, monkeypatch, target):
    url = "http://me:s/3cr@t@127.0.0.1:9/"  # ha: Home Assistant's own URL; the others: http.url
    c = cfg(transports=["http"], http={"target": target, "url": url, "api_key": "k"},
            homeassistant={"url": url if target == "ha" else "http://127.0.0.1:8123/", "token": "t"})
    c["node_id"] = "n1"
    tx = assemble.transports(c, [("temperature", "\u00b0C")], Led(c["led"]))[0]
    assert tx.where == "%s http://me:***@127.0.0.1:9" % target


class Watchdog:
    """machine.WDT for the loop under CPython: counts feeds (the fake's
    own, for the VM, resets the board from a thread)."""
    feeds = 0

    def __init__(self, **kw):
        pass

    def feed(self):
        Watchdog.feeds += 1


@pytest.fixture(autouse=True)
def watchdog(monkeypatch):
    import machine
    import upynode
    monkeypatch.setattr(machine, "WDT", Watchdog)
    monkeypatch.setattr(upynode, "wdt", None)
    Watchdog.feeds = 0
    return Watchdog


@pytest.fixture
def flash(tmp_path, monkeypatch):
    """The node's filesystem: its queue, boot counter and discovery files."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def online(world, clock, flash):
    """A joined station (the fake needs connect_ms of virtual time)."""
    world["aps"] = {"x": {"password": "", "up": True}}
    sta = network.WLAN(network.STA_IF)
    sta.active(True)
    sta.connect("x", "")
    clock.sleep_ms(1000)
    return world


def make(monkeypatch, txs, lines=None, **over):
    monkeypatch.setattr("upynode.assemble.transports", lambda *a, **k: txs)
    c = cfg(**over)
    c["node_id"] = "esp8266_test"
    return node.Node(c, (lines.append if lines is not None else lambda m: None))


def test_a_reading_carries_its_identity_time_and_diagnostics(online, heap, monkeypatch):
    online.update(temperature=-3.5, light=1024)
    heap.free = 17856
    tx = FakeTx()
    n = make(monkeypatch, [tx])
    assert n.cycle(7)
    n.cycle(8)
    first, second = tx.sent
    assert first["boot"] == 1 and first["seq"] == 7 and isinstance(first["up"], int) and "ts" not in first
    assert first["temperature"] == -3.5 and first["light_raw"] == 1024 and first["heap"] == 17856
    assert first["rssi"] == -60 and first["reset"] == 0  # power-on; reported once
    assert "reset" not in second and "q" not in second and "err" not in first


def test_the_boot_counter_survives_reboots(online, monkeypatch):
    assert [make(monkeypatch, [FakeTx()]).boot for _ in range(3)] == [1, 2, 3]


def test_a_re_flashed_node_starts_a_new_epoch_so_its_readings_are_not_taken_for_old_ones(online, monkeypatch):
    # boot.n erased (the README's erase step): boot numbers start over at 1,
    # and the receiver would drop (node, boot, seq) it already holds as
    # duplicates; the new epoch ("ep") tells the two lives apart
    first = [make(monkeypatch, [FakeTx()]) for _ in range(2)]
    assert [x.boot for x in first] == [1, 2] and first[0].ep == first[1].ep
    import os
    os.remove("boot.n")
    again = make(monkeypatch, [FakeTx()])
    assert again.boot == 1 and again.ep != first[0].ep
    # a boot.n from before epochs ("5") keeps its count and gets one
    open("boot.n", "w").write("5")
    n = make(monkeypatch, [FakeTx()])
    assert n.boot == 6 and open("boot.n").read() == "6 %d" % n.ep


def test_a_boot_with_a_full_flash_runs_on(online, monkeypatch):
    # boot.n cannot be written: the node starts anyway (it used to crash
    # here and restart every 30 s), with the next number in RAM
    make(monkeypatch, [FakeTx()])

    def full(path, data):
        raise OSError(28)
    monkeypatch.setattr("upynode.assemble.save", full)
    tx = FakeTx()
    n = make(monkeypatch, [tx])
    assert n.boot == 2 and n.cycle(1) and tx.sent[0]["boot"] == 2
    assert open("boot.n").read() == "1 %d" % tx.sent[0]["ep"]


def test_readings_carry_wall_clock_time_once_ntp_answered(online, monkeypatch):
    import time
    tx = FakeTx()
    n = make(monkeypatch, [tx])
    n.clock.sync()
    n.cycle(1)
    assert abs(tx.sent[0]["ts"] - time.time()) < 5  # ("up" too: the uptime, for HA)


def test_cycle_reports_sensor_errors_in_the_message(online, monkeypatch):
    online["faults"] = {"mcp9808": "absent"}
    tx = FakeTx()
    make(monkeypatch, [tx]).cycle(1)
    assert tx.sent[0]["err"] == {"mcp9808": "no device"}
    assert "temperature" not in tx.sent[0] and "light" in tx.sent[0]


def test_cycle_line_names_each_transport_and_what_became_of_the_reading(online, monkeypatch):
    class Http(FakeTx):
        name, where, history = "ha", "ha http://127.0.0.1:8123", False
    lines = []
    n = make(monkeypatch, [FakeTx(fail={1}), Http(fail={1})], lines)
    n.cycle(3)
    assert lines[-1].startswith('1.3: {"ep":%d,"boot":1,"seq":3,' % n.ep)
    assert lines[-1].endswith("} -> mqtt queued, ha NOT SENT")


def test_every_state_message_says_how_long_the_node_has_been_up(online, monkeypatch, clock):
    # Home Assistant's uptime diagnostic reads "up" from each state message,
    # also once NTP has put "ts" in the readings (which then carry no "up")
    tx = FakeTx()
    n = make(monkeypatch, [tx])
    n.cycle(1)
    clock.sleep(61)
    n.clock.epoch = 1700000000
    n.cycle(2)
    assert tx.sent[0]["up"] == 0 and tx.sent[1]["up"] == 61 and tx.sent[1]["ts"] == 1700000061


def test_a_reading_the_sink_missed_is_queued_and_replayed_oldest_first(online, monkeypatch, clock):
    tx = FakeTx()
    n = make(monkeypatch, [tx], backlog={"per_cycle": 2})
    tx.down = True
    for seq in (1, 2, 3):
        n.cycle(seq)
        clock.sleep(400)  # past any backoff
    assert len(tx.q) == 3 and tx.sent == []
    tx.down = False
    n.cycle(4)  # live first, then the two oldest queued
    assert [m["seq"] for m in tx.sent] == [4]
    assert [r["seq"] for r in tx.replayed] == [1, 2] and len(tx.q) == 1
    assert "heap" not in tx.replayed[0]  # a record is the reading, not the node's diagnostics
    n.cycle(5)
    assert [r["seq"] for r in tx.replayed] == [1, 2, 3] and len(tx.q) == 0


def test_a_record_leaves_the_queue_only_when_acknowledged(online, monkeypatch, clock):
    tx = FakeTx()
    n = make(monkeypatch, [tx], backlog={"per_cycle": 5})
    tx.down = True
    for seq in (1, 2, 3):
        n.cycle(seq)
        clock.sleep(400)
    tx.down, tx.replay_ok = False, 1  # the broker acknowledges one, then the connection drops
    n.cycle(4)
    assert [r["seq"] for r in tx.replayed] == [1]
    assert [json.loads(r)["seq"] for r in tx.q.peek(10)] == [2, 3]
    # and the queue is on flash: a reboot finds it
    assert len(make(monkeypatch, [FakeTx()]).txs[0].q) == 2


def test_queued_readings_of_this_boot_get_their_time_when_ntp_answers(online, monkeypatch, clock):
    tx = FakeTx()
    n = make(monkeypatch, [tx])
    tx.down = True
    n.cycle(1)
    clock.sleep(400)
    tx.down = False
    n.clock.sync()
    n.cycle(2)
    assert "ts" in tx.replayed[0] and "up" not in tx.replayed[0]
    assert tx.sent[0]["ts"] - tx.replayed[0]["ts"] in (399, 400, 401)


def test_online_the_queue_costs_no_flash_writes_offline_one_append_per_reading(online, monkeypatch, clock, request):
    tx = FakeTx()
    n = make(monkeypatch, [tx])
    writes = request.getfixturevalue("flash_writes")
    for seq in range(1, 11):
        n.cycle(seq)
    assert writes == []
    tx.down = True
    for seq in range(11, 21):
        n.cycle(seq)
        clock.sleep(400)
    # the first queued reading creates the file (header, then the record)
    assert writes == ["backlog_mqtt.q"] * 11


def test_a_dead_sink_is_retried_with_growing_capped_backoff(online, monkeypatch, clock):
    tx = FakeTx()
    n = make(monkeypatch, [tx], retry={"min_s": 2, "max_s": 30})
    tx.down = True
    attempts = []
    for seq in range(1, 301):  # 300 s at one reading a second
        before = tx.calls
        n.cycle(seq)
        if tx.calls > before:
            attempts.append(clock.ms // 1000)
        clock.sleep(1)
    gaps = [b - a for a, b in zip(attempts, attempts[1:])]
    assert gaps[0] <= 2 and max(gaps) <= 31 and max(gaps) >= 15  # grows, then stays under the cap
    assert len(attempts) < 40  # not every cycle
    assert len(tx.q) == 300  # and every reading waits on flash


def test_wifi_lost_while_running_is_noticed_and_nothing_is_tried(online, monkeypatch, clock):
    tx = FakeTx()
    lines = []
    n = make(monkeypatch, [tx], lines)
    n.cycle(1)
    online["aps"]["x"]["up"] = False
    calls = tx.calls
    for seq in (2, 3, 4):
        n.cycle(seq)
        clock.sleep(1)
    assert tx.calls == calls and len(tx.q) == 3
    assert "wifi: connection lost" in lines and "rssi" not in lines[-1].split("->")[0]
    online["aps"]["x"]["up"] = True
    n.cycle(5)  # the station sees the AP again and rejoins, which takes a join's time
    clock.sleep(5)
    n.cycle(6)
    assert "wifi: back" in lines and [m["seq"] for m in tx.sent] == [1, 6]
    assert [r["seq"] for r in tx.replayed] == [2, 3, 4, 5]


class Tx:
    """A sink whose send() answers `ok`, as the transports' send() do."""
    name = where = "test"
    history = False

    def __init__(self, ok):
        self.ok = ok

    def send(self, msg, text):
        return self.ok

    def poll(self):
        pass

    def close(self):
        pass


def _gpio2_writes(monkeypatch):
    import _world
    gpio = []
    put = _world.put_state
    monkeypatch.setattr(_world, "put_state", lambda n, v: (gpio.append(v) if n == "gpio2" else None, put(n, v)))
    return gpio


@pytest.mark.parametrize("oks, blinks", [
    ([True], 1), ([False], 0), ([], 0),
    ([False, False], 0), ([False, True], 1), ([True, True], 1),  # one blink per cycle, not per transport
])
def test_heartbeat_blinks_once_per_cycle_that_published_and_never_on_a_failed_one(online, monkeypatch, oks, blinks):
    import _world
    online["temperature"] = 21.0
    lines = []
    n = make(monkeypatch, [Tx(ok) for ok in oks], lines, led={"mode": "heartbeat"})
    gpio = _gpio2_writes(monkeypatch)
    assert n.cycle(1) is (blinks == 1)
    assert gpio == [0, 1] * blinks  # lit (active-low), then dark again; nothing at all without a publish
    assert _world.STATE.get("gpio2") == 1  # dark between cycles
    assert lines[-1].endswith(", ".join("test " + ("sent" if ok else "NOT SENT") for ok in oks))


def test_heartbeat_stays_dark_when_the_broker_refuses(online, monkeypatch):
    # The real MQTT transport, its connect refused: send() fails, no blink.
    from upynode.mqtt import Mqtt

    def refused(self):
        raise OSError(111)
    monkeypatch.setattr(Mqtt, "connect", refused)
    monkeypatch.setattr("upynode.assemble.transports", REAL_TRANSPORTS)
    c = cfg(mqtt={"host": "127.0.0.1"}, led={"mode": "heartbeat"})
    c["node_id"] = "n1"
    lines = []
    n = node.Node(c, lines.append)
    gpio = _gpio2_writes(monkeypatch)
    assert n.cycle(1) is False
    assert gpio == []
    assert "mqtt: mqtt 127.0.0.1:1883: connection refused" in lines
    assert lines[-1].startswith("1.1: {") and lines[-1].endswith("} -> mqtt queued")


def _run(monkeypatch, c, tx, cycles, log):
    monkeypatch.setattr("upynode.assemble.transports", lambda *a, **k: [tx])
    c["node_id"] = "esp8266_test"
    return node.run(c, log=log, cycles=cycles)


def test_a_failed_publish_costs_only_its_cycle(online, monkeypatch):
    tx = FakeTx(fail={2})
    lines = []
    _run(monkeypatch, cfg(interval_s=1, retry={"min_s": 1, "max_s": 1}), tx, 4, lines.append)
    assert [m["seq"] for m in tx.sent] == [1, 3, 4]
    assert any(line.startswith("1.2: ") and line.endswith("mqtt queued") for line in lines)
    assert [r["seq"] for r in tx.replayed] == [2]


def test_seq_counts_intervals_so_a_reading_not_taken_leaves_a_gap(online, monkeypatch, clock):
    tx = FakeTx()
    real_send = tx.send

    def slow_send(msg, text):  # the second cycle takes 3.5 intervals
        if msg["seq"] == 2:
            clock.sleep(3.5)
        return real_send(msg, text)
    tx.send = slow_send
    lines = []
    _run(monkeypatch, cfg(interval_s=1), tx, 4, lines.append)
    assert [m["seq"] for m in tx.sent] == [1, 2, 5, 6]
    assert "1.3-4: not taken: the cycle before overran its interval" in lines


def test_commands_are_polled_even_when_every_cycle_overruns(online, monkeypatch, clock):
    tx = FakeTx()
    polls = []
    tx.poll = lambda: polls.append(clock.ms)
    real_send = tx.send
    tx.send = lambda msg, text: (clock.sleep(1.5), real_send(msg, text))[1]
    _run(monkeypatch, cfg(interval_s=1), tx, 5, lambda m: None)
    assert len(polls) >= 5


def test_an_unexpected_error_costs_only_its_cycle(online, monkeypatch):
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
    assert any("1.1: KeyError" in line for line in lines)


def test_repeated_memory_errors_reset_the_node(online, monkeypatch):
    monkeypatch.setattr(sensors, "read_all", lambda *a, **k: (_ for _ in ()).throw(MemoryError()))
    lines = []
    with pytest.raises(SystemExit) as e:
        _run(monkeypatch, cfg(interval_s=1), FakeTx(), 10, lines.append)
    assert e.value.code == 42  # the fake machine.reset()
    assert sum("out of memory" in line for line in lines) == node.OOM_RESET


def test_a_reading_lost_to_memory_before_any_sink_had_it_is_counted(online, monkeypatch):
    # A MemoryError while reading or writing the message (before a sink
    # sent or queued it) loses that reading: the next message counts it
    read_all = sensors.read_all
    calls = []

    def once(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise MemoryError()
        return read_all(*a, **k)
    monkeypatch.setattr(sensors, "read_all", once)
    tx, lines = FakeTx(), []
    _run(monkeypatch, cfg(interval_s=1), tx, 3, lines.append)
    assert [m["seq"] for m in tx.sent] == [1, 3]
    assert "drop" not in tx.sent[0] and tx.sent[1]["drop"] == 1
    assert any(line.startswith("1.2: out of memory") for line in lines)


def test_a_memory_error_after_the_sinks_had_the_reading_loses_nothing(online, monkeypatch):
    # ... and one after every sink had it (the LED, the console line) is
    # not counted as a loss
    tx, lines, seen = FakeTx(), [], []

    def log(line):
        seen.append(line)
        if len(seen) == 3 and "->" in line:
            raise MemoryError()
        lines.append(line)
    _run(monkeypatch, cfg(interval_s=1), tx, 3, log)
    assert [m["seq"] for m in tx.sent] == [1, 2, 3] and "drop" not in tx.sent[2]


def test_gc_collect_runs_between_cycles(online, monkeypatch):
    collected = []
    monkeypatch.setattr(node.gc, "collect", lambda: collected.append(1))
    _run(monkeypatch, cfg(interval_s=1), FakeTx(), 2, lambda m: None)
    assert len(collected) >= 2


def test_mqtt_announce_requests(world):
    from upynode import mqtt
    c = cfg()
    m = mqtt.Mqtt(c["mqtt"], "n1", [("temperature", "°C")], None, lambda s: None)
    assert m.name == "mqtt" and m.where == "mqtt 127.0.0.1:1883"
    assert m.announce == mqtt._CHANGED  # the first connect announces only what changed since the last one
    m._message(b"homeassistant/status", b"online")
    assert m.announce == mqtt._AGAIN  # HA restarted: everything again
    raw = mqtt.Mqtt(dict(c["mqtt"], format="raw"), "n1", [("temperature", "°C")], None, lambda s: None)
    assert raw.announce == mqtt._NOTHING  # no discovery in raw format: nothing to announce


def test_deep_sleep_one_reading_per_wake_same_boot_next_seq(online, monkeypatch, clock):
    import machine
    from upynode import sleep
    tx = FakeTx()
    real_send = tx.send
    tx.send = lambda msg, text: (clock.sleep(0.3), real_send(msg, text))[1]  # a wake's network time
    lines = []
    for wake in range(3):
        # each boot imports upynode.assemble afresh (run() releases it)
        monkeypatch.setattr("upynode.assemble.transports", lambda *a, **k: [tx])
        monkeypatch.setattr(sleep, "_T0", clock.ms)  # the chip's clock starts at each wake
        c = cfg(sleep="deep", interval_s=60, led={"mode": "off"})
        c["node_id"] = "esp8266_test"
        with pytest.raises(SystemExit):  # the fake machine.deepsleep(): the VM would boot again
            node.run(c, log=lines.append)
        assert machine.reset_cause() == machine.DEEPSLEEP_RESET
        clock.sleep(1)
    assert [(m["boot"], m["seq"]) for m in tx.sent] == [(1, 1), (1, 2), (1, 3)]
    assert len({m["ep"] for m in tx.sent}) == 1  # one epoch: the count did not start over
    # each wake reports the last one's awake time, reset to deepsleep(); the
    # first after a power-on keeps WebREPL open for sleep.WINDOW_S
    assert "awake_ms" not in tx.sent[0]
    assert tx.sent[1]["awake_ms"] == sleep.WINDOW_S * 1000 + 300 and tx.sent[2]["awake_ms"] == 300
    assert sum(line.startswith("sleep: ") and line.endswith(" ms") for line in lines) == 3
    assert open("boot.n").read() == "1 %d" % tx.sent[0]["ep"]  # a wake writes nothing to flash


@pytest.mark.parametrize("announced", [True, False])
def test_a_wake_whose_announcement_did_not_happen_leaves_it_to_the_next(online, monkeypatch, clock, announced):
    from upynode import rtcmem
    tx = FakeTx()
    tx.announce = 1  # Mqtt's, pending: cleared by a whole announcement

    def send(msg, text):
        if announced:
            tx.announce = 0
        return True
    tx.send = send
    monkeypatch.setattr("upynode.assemble.transports", lambda *a, **k: [tx])
    c = cfg(sleep="deep", interval_s=60, led={"mode": "off"})
    c["node_id"] = "esp8266_test"
    with pytest.raises(SystemExit):
        node.run(c, log=lambda m: None)
    assert rtcmem.load()["disc"] == (1 if announced else 0)


def test_deep_sleep_wake_with_wifi_down_queues_and_sleeps(online, monkeypatch, clock):
    tx = FakeTx()
    monkeypatch.setattr("upynode.assemble.transports", lambda *a, **k: [tx])
    online["aps"]["x"]["up"] = False
    c = cfg(sleep="deep", interval_s=60, led={"mode": "off"})
    c["node_id"] = "esp8266_test"
    with pytest.raises(SystemExit):
        node.run(c, log=lambda m: None)
    assert tx.calls == 0 and len(tx.q) == 1


def test_out_of_memory_while_sending_keeps_the_reading(online, monkeypatch, clock):
    tx = FakeTx()

    def oom(msg, text):
        raise MemoryError()
    tx.send = oom
    lines = []
    n = make(monkeypatch, [tx], lines)
    n.cycle(1)
    assert [json.loads(r)["seq"] for r in tx.q.peek(5)] == [1]
    assert any("out of memory (1 in a row)" in line for line in lines)


def test_a_reading_not_even_the_queue_had_memory_for_is_reported_lost(online, monkeypatch, clock):
    tx = FakeTx()
    send = tx.send

    def oom(*a):
        raise MemoryError()
    tx.send = oom
    lines = []
    n = make(monkeypatch, [tx], lines)
    n.queue = oom  # e.g. importing upynode.backlog
    n.cycle(1)
    assert "mqtt LOST (out of memory)" in lines[-1] and "out of memory (1 in a row)" in lines[-2]
    tx.send = send
    del n.queue
    clock.sleep_ms(n.retry["max_s"] * 1000)  # the sink's backoff
    assert n.cycle(2)
    assert tx.sent[-1]["seq"] == 2 and tx.sent[-1]["drop"] == 1  # the loss, in the next message


def test_memory_errors_while_sending_in_a_row_reset_the_node(online, monkeypatch):
    tx = FakeTx()

    def oom(msg, text):
        raise MemoryError()
    tx.send = oom
    lines = []
    with pytest.raises(SystemExit):
        _run(monkeypatch, cfg(interval_s=1, retry={"min_s": 1, "max_s": 1}), tx, 20, lines.append)
    assert sum("out of memory" in line for line in lines) == node.OOM_RESET


def test_a_wrong_token_costs_one_request_per_reading_not_one_per_quantity(online, monkeypatch):
    # issue 10 defect 6: HA notifies every failed login and may ban the address
    from upynode.ha import Ha
    c = cfg(transports=["http"], http={"target": "ha"}, led={"mode": "off"},
            homeassistant={"url": "http://127.0.0.1:8123/", "token": "wrong"})
    c["node_id"] = "n1"
    calls = []
    monkeypatch.setattr(Ha, "_one", lambda self, q, v: calls.append(q) or 401)
    lines = []
    tx = Ha(c, "n1", [("light", "%"), ("light_raw", "raw"), ("temperature", "°C")], lines.append)
    assert tx.send({"light": 50.0, "light_raw": 512, "temperature": 21.5}) is False
    assert len(calls) == 1 and lines == ["http: ha http://127.0.0.1:8123: HTTP 401 (check homeassistant.token)"]


class OpeningTx(FakeTx):
    """A sink that connects (and announces) before the first reading, as
    MQTT does: it has `announce`, and send(None, None) opens it."""
    announce = 1

    def __init__(self, opens=True):
        super().__init__()
        self.opens, self.events = opens, []

    def send(self, msg, text):
        if msg is None:
            self.events.append("open")
            return self.opens
        self.events.append("send %d" % msg["seq"])
        return super().send(msg, text)


def test_a_sink_connects_and_announces_before_the_first_reading(online, monkeypatch):
    # node.run opens each sink before its loop, while the heap holds only
    # the loop's objects (Node.start); the readings follow.
    tx = OpeningTx()
    lines = []
    _run(monkeypatch, cfg(interval_s=1), tx, 2, lines.append)
    assert tx.events == ["open", "send 1", "send 2"]
    assert [m["seq"] for m in tx.sent] == [1, 2]


def test_a_sink_that_cannot_open_waits_its_backoff_and_the_reading_is_queued(online, monkeypatch):
    # A dead broker at boot: one attempt, not a second one in the same
    # second for the first reading, which goes to the queue.
    tx = OpeningTx(opens=False)
    lines = []
    _run(monkeypatch, cfg(interval_s=1, retry={"min_s": 60, "max_s": 60}), tx, 1, lines.append)
    assert tx.events == ["open"]
    assert lines[-1].startswith("1.1: {") and lines[-1].endswith("} -> mqtt queued")


def test_an_image_on_trial_that_delivers_nothing_in_its_time_restarts(online, monkeypatch, clock, flash):
    # update.py's trial (issue 19): "romfs.trial" holds "<boots> <seconds>".
    # Nothing acknowledged within the seconds (at least 3 intervals): the
    # node restarts, a boot that counts towards the rollback; the reading
    # of that cycle is on flash first.
    (flash / "romfs.trial").write_text("1 30")
    tx = FakeTx()
    tx.down = True
    lines = []
    with pytest.raises(SystemExit) as e:
        _run(monkeypatch, cfg(interval_s=5, retry={"min_s": 1, "max_s": 1}), tx, 100, lines.append)
    assert e.value.code == 42  # the fake machine.reset()
    assert lines[-1] == "update: the new image delivered no reading in its time on trial: restarting"
    taken = [ln for ln in lines if ln.startswith("1.")]
    assert len(taken) == 7 and taken[-1].endswith("mqtt queued")  # 30 s at 5 s: the 7th is past it
    assert (flash / "romfs.trial").read_text() == "1 30"  # update.py counts the boot, not the loop


def test_an_image_on_trial_gets_at_least_three_intervals(online, monkeypatch, clock, flash):
    (flash / "romfs.trial").write_text("2 10")
    tx = FakeTx()
    tx.down = True
    lines = []
    with pytest.raises(SystemExit):
        _run(monkeypatch, cfg(interval_s=20, retry={"min_s": 1, "max_s": 1}), tx, 100, lines.append)
    assert len([ln for ln in lines if ln.startswith("1.")]) == 4  # 60 s, not 10


def test_an_image_on_trial_that_delivers_stays_and_is_never_restarted_for_it(online, monkeypatch, clock, flash):
    (flash / "romfs.trial").write_text("1 10")
    tx = FakeTx(fail={1, 2})
    lines = []
    _run(monkeypatch, cfg(interval_s=5, retry={"min_s": 1, "max_s": 1}), tx, 20, lines.append)
    assert "update: the new image delivered a reading: it stays" in lines
    assert not (flash / "romfs.trial").exists()
    assert not any("restarting" in ln for ln in lines)


def test_a_sleeping_node_asked_to_stay_awake_stays_then_sleeps(online, monkeypatch, clock):
    # the retained ~/awake (deploy --wait-awake) sets the transport's
    # stay_s: this wake keeps WebREPL open that long, then naps as always
    import machine
    from upynode import sleep
    tx = FakeTx()
    lines = []
    for wake, stay in enumerate((0, 0, 90)):
        tx.stay_s = stay
        monkeypatch.setattr("upynode.assemble.transports", lambda *a, **k: [tx])
        monkeypatch.setattr(sleep, "_T0", clock.ms)
        c = cfg(sleep="deep", interval_s=60, led={"mode": "off"})
        c["node_id"] = "esp8266_test"
        with pytest.raises(SystemExit):
            node.run(c, log=lines.append)
        assert machine.reset_cause() == machine.DEEPSLEEP_RESET
        clock.sleep(1)
    assert "sleep: asked to stay awake 90 s: WebREPL is open till then" in lines
    assert sleep.awake_ms() >= 90 * 1000 - 1000  # the third wake stayed up before it slept


def test_mqtt_takes_the_stay_awake_request_of_a_sleeping_node(world):
    from upynode import mqtt
    c = config.parse(json.dumps({"wifi": {"ssid": "x"}, "mqtt": {"host": "127.0.0.1"},
                                 "webrepl": {"password": "s3cret"}}))["mqtt"]
    m = mqtt.Mqtt(c, "n1", [], None, lambda s: None)
    for msg, want in ((b"600", 600), (b"99999", 3600), (b"", 0), (b"soon", 0)):
        m._message(b"home/n1/awake", msg)
        assert m.stay_s == want


def test_a_full_flash_costs_the_queued_readings_counted_and_the_other_sinks_still_send(online, monkeypatch, clock):
    # The broker is down and the flash is full: the reading cannot be
    # queued. It is counted in "drop" and named on the cycle's line; the
    # cycle goes on to the receiver, which still gets it live, and nothing
    # resets the node. Once the flash has room again, readings queue.
    import os as host_os
    from upynode import backlog

    class Rx(FakeTx):
        name, where = "receiver", "receiver http://127.0.0.1:5000"
    mq, rx = FakeTx(), Rx()
    lines = []
    n = make(monkeypatch, [mq, rx], lines)
    mq.down = True
    st = host_os.statvfs(".")
    full = host_os.statvfs_result((4096, 4096, 100, 0, 0) + tuple(st)[5:])
    with monkeypatch.context() as m:
        m.setattr(backlog.os, "statvfs", lambda p: full, raising=False)
        for seq in (1, 2, 3):
            n.cycle(seq)
            clock.sleep(400)
    cycles = [line for line in lines if " -> " in line]
    assert len(cycles) == 3 and all(line.endswith("-> mqtt LOST (flash full), receiver sent") for line in cycles), lines
    assert [m["seq"] for m in rx.sent] == [1, 2, 3]
    assert rx.sent[-1]["drop"] == 2  # the two before it, in the next message
    n.cycle(4)  # room again
    assert lines[-1].endswith("-> mqtt queued, receiver sent")
    assert rx.sent[-1]["drop"] == 3 and len(mq.q) == 1


@pytest.mark.parametrize("bad", [4102444800, 946684800])  # 2100, and 2000 (a server's epoch)
def test_an_ntp_time_out_of_belief_is_ignored_until_a_right_one_comes(online, monkeypatch, clock, bad):
    import ntptime
    import time
    lines = []
    tx = FakeTx()
    n = make(monkeypatch, [tx], lines)
    right = ntptime.time
    y2k = time.gmtime(0)[0] == 2000
    monkeypatch.setattr(ntptime, "time", lambda: bad - (946684800 if y2k else 0))
    n.clock.sync()
    n.cycle(1)
    assert "ts" not in tx.sent[0] and "up" in tx.sent[0]
    assert any(line.startswith("ntp: ") and "not believed" in line and str(time.gmtime(bad)[0]) in line
               for line in lines), lines
    monkeypatch.setattr(ntptime, "time", right)
    clock.sleep(61)  # a failed sync is tried again after a minute
    n.clock.sync()
    n.cycle(2)
    assert "ntp: synced" in lines and abs(tx.sent[1]["ts"] - time.time()) < 5


class Refusing(FakeTx):
    """A receiver that refuses for good (HTTP 400) any batch holding a
    reading with seq in `bad`, and takes the others."""
    name, where = "receiver", "receiver http://127.0.0.1:5000"
    refused = None

    def __init__(self, bad):
        FakeTx.__init__(self)
        self.bad, self.batches = set(bad), []

    def send(self, msg, text):
        self.refused = None
        if msg["seq"] in self.bad and not self.down:
            self.refused = 'HTTP 400 {"error":"readings[0]: no"}'
            return False
        return FakeTx.send(self, msg, text)

    def replay(self, records):
        self.refused = None
        seqs = [json.loads(r)["seq"] for r in records]
        self.batches.append(seqs)
        if self.bad & set(seqs):
            self.refused = 'HTTP 400 {"error":"readings[0]: no"}'
            return 0
        return FakeTx.replay(self, records)


def test_a_queued_reading_refused_for_good_is_dropped_counted_and_the_rest_delivered(online, monkeypatch, clock):
    tx = Refusing(bad={3})
    lines = []
    n = make(monkeypatch, [tx], lines, backlog={"per_cycle": 5})
    tx.down = True
    for seq in range(1, 7):
        n.cycle(seq)
        clock.sleep(400)
    assert len(tx.q) == 6
    tx.down = False
    tx.bad = {3}
    for seq in range(7, 14):
        n.cycle(seq)
        clock.sleep(400)
    assert sorted(r["seq"] for r in tx.replayed) == [1, 2, 4, 5, 6] and len(tx.q) == 0
    assert tx.batches[0] == [1, 2, 3, 4, 5]  # refused whole, then one at a time
    assert [1] in tx.batches and [3] in tx.batches
    assert any('refused for good (HTTP 400 {"error":"readings[0]: no"}): 1 counted in drop' in ln for ln in lines)
    assert tx.sent[-1]["drop"] == 1


def test_a_live_reading_refused_for_good_is_counted_not_queued(online, monkeypatch, clock):
    tx = Refusing(bad={2})
    lines = []
    n = make(monkeypatch, [tx], lines)
    for seq in (1, 2, 3):
        n.cycle(seq)
    cycles = [ln for ln in lines if " -> " in ln]
    assert cycles[1].endswith('-> receiver REFUSED (HTTP 400 {"error":"readings[0]: no"})')
    assert cycles[2].endswith("-> receiver sent")  # no backoff: the sink is up
    assert tx.q is None and tx.sent[-1]["seq"] == 3 and tx.sent[-1]["drop"] == 1


def test_the_largest_reading_of_a_config_fits_the_smallest_queue_its_check_allows(online, monkeypatch, clock):
    # Every sensor failing with a long error, the longest names the
    # receiver takes, queued with the broker down: config's bound holds.
    sens = [{"type": "adc", "prefix": "a" * 23}, {"type": "mcp9808", "prefix": "m" * 21},
            {"type": "dht22", "prefix": "d" * 21}]
    for kb in range(1, 20):
        try:
            c = cfg(sensors=sens, backlog={"max_kb": kb}, led={"mode": "heartbeat"})
            break
        except config.ConfigError:
            continue
    monkeypatch.setattr("upynode.assemble.transports", lambda *a, **k: [tx])
    tx = FakeTx()
    c["node_id"] = "esp8266_test"
    lines = []
    n = node.Node(c, lines.append)
    for _, s in n.sens:
        def broken():
            raise ValueError("x" * 300)
        s.read = broken
    tx.down = True
    n.cycle(999999)
    assert lines[-1].endswith("-> mqtt queued"), (kb, lines[-1])
    assert json.loads(n.queue(tx).peek(1)[0])["err"]["adc"] == "ValueError: " + "x" * 88
