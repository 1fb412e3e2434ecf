"""Home Assistant MQTT discovery payloads (lib/upynode/discovery.py) under CPython,
checked against HA's documented rules:

- abbreviations: homeassistant/components/mqtt/abbreviations.py (ABBREVIATIONS,
  DEVICE_ABBREVIATIONS); `~` is replaced at the start or end of a *_topic value;
- device class / unit pairs: homeassistant/components/sensor/const.py
  (DEVICE_CLASS_UNITS; a sensor with no device class may have any unit);
- discovery topic `<prefix>/<component>/[<node_id>/]<object_id>/config`, ids [a-zA-Z0-9_-].
The same payloads built in the MicroPython VM are compared in test_http.py.
"""
import json
import re

import pytest

from upynode import config, discovery

# The subset of HA's abbreviations a sensor or switch can use (abbreviations.py).
ABBREVIATIONS = {
    "~": "~", "name": "name", "uniq_id": "unique_id", "stat_t": "state_topic",
    "cmd_t": "command_topic", "val_tpl": "value_template", "unit_of_meas": "unit_of_measurement",
    "dev_cla": "device_class", "stat_cla": "state_class", "avty_t": "availability_topic",
    "pl_avail": "payload_available", "pl_not_avail": "payload_not_available",
    "exp_aft": "expire_after", "pl_on": "payload_on", "pl_off": "payload_off",
    "stat_on": "state_on", "stat_off": "state_off", "dev": "device", "obj_id": "object_id",
    "ic": "icon", "frc_upd": "force_update", "json_attr_t": "json_attributes_topic",
    "sug_dsp_prc": "suggested_display_precision", "o": "origin", "ent_cat": "entity_category",
    "json_attr_tpl": "json_attributes_template",
}
DEVICE_ABBREVIATIONS = {"ids": "identifiers", "name": "name", "mf": "manufacturer",
                        "mdl": "model", "sw": "sw_version", "cns": "connections",
                        "cu": "configuration_url", "sa": "suggested_area"}
ORIGIN_ABBREVIATIONS = {"name": "name", "sw": "sw_version", "url": "support_url"}
# sensor DEVICE_CLASS_UNITS, for the classes a node can produce.
DEVICE_CLASS_UNITS = {
    "temperature": {"°C", "°F", "K"},
    "humidity": {"%"},
    "moisture": {"%"},
    "battery": {"%"},
    "illuminance": {"lx"},
    "voltage": {"V", "mV", "µV", "kV", "MV"},
    "pressure": {"Pa", "hPa", "kPa", "bar", "cbar", "mbar", "mmHg", "inHg", "psi"},
}
STATE_CLASSES = {"measurement", "total", "total_increasing"}
ID = re.compile(r"[a-zA-Z0-9_-]+")

# What the node's drivers report (assemble.sensor_units()), plus user-configured ADC units.
UNITS = {"temperature": "°C", "humidity": "%", "light": "%", "light_raw": "raw",
         "out_temperature": "°C", "in_humidity": "%", "soil_moisture": "%",
         "lux": "lx", "battery": "%", "vcc": "V", "pressure": "hPa", "level": "cm",
         "count": ""}


def mqtt(**over):
    c = dict(config.DEFAULTS["mqtt"])
    c.update(over)
    return c


def text(parts):
    """A payload as HA receives it: the node writes it in parts (discovery._entity)."""
    return "".join(discovery.flat(parts))


def expand(payload):
    """HA's discovery processing: abbreviations expanded, `~` substituted.
    payload: as the node writes it, in parts (discovery._entity)."""
    d = json.loads(text(payload))
    unknown = set(d) - set(ABBREVIATIONS)
    assert not unknown, "not an HA abbreviation: %s" % unknown
    out = {ABBREVIATIONS[k]: v for k, v in d.items()}
    dev = out.get("device", {})
    assert not set(dev) - set(DEVICE_ABBREVIATIONS), dev
    out["device"] = {DEVICE_ABBREVIATIONS[k]: v for k, v in dev.items()}
    o = out.get("origin", {})
    assert not set(o) - set(ORIGIN_ABBREVIATIONS), o
    out["origin"] = {ORIGIN_ABBREVIATIONS[k]: v for k, v in o.items()}
    base = out.pop("~", None)
    for k, v in list(out.items()):
        if k.endswith("_topic") and base is not None:
            if v.startswith("~"):
                v = base + v[1:]
            elif v.endswith("~"):
                v = v[:-1] + base
            out[k] = v
    return out


def check_common(topic, payload, component, node, obj):
    parts = topic.split("/")
    assert parts == ["homeassistant", component, node, obj, "config"]
    assert all(ID.fullmatch(p) for p in parts[1:4])
    e = expand(payload)
    assert ID.fullmatch(e["unique_id"]) and e["unique_id"] == "%s_%s" % (node, obj)
    assert e["availability_topic"] == "home/%s/status" % node
    # HA's defaults, what the node's will and birth say: not sent
    assert e.get("payload_available", "online") == "online"
    assert e.get("payload_not_available", "offline") == "offline"
    dev = e["device"]
    assert dev["identifiers"] == [node] and dev["name"] == node
    assert dev["model"] == "ESP8266" and dev["manufacturer"] == "upynode"
    assert dev["sw_version"] == discovery.VERSION
    # who announced it (HA's origin info); no configuration_url: the node
    # serves no page a browser can open
    assert e["origin"] == {"name": "upynode", "sw_version": discovery.VERSION}
    assert "configuration_url" not in dev
    return e


@pytest.mark.parametrize("quantity", sorted(UNITS))
def test_sensor_payload_follows_ha_rules(quantity):
    unit = UNITS[quantity]
    topic, payload = discovery.sensor_config("attic-1", quantity, unit, mqtt())
    e = check_common(topic, payload, "sensor", "attic-1", quantity)
    assert e["state_topic"] == "home/attic-1/state"
    assert e["value_template"] == "{{value_json.get('%s','None')}}" % quantity
    assert e["state_class"] in STATE_CLASSES
    assert "expire_after" not in e          # 0: never expires
    cls = e.get("device_class")
    if cls is not None:
        assert e.get("unit_of_measurement") in DEVICE_CLASS_UNITS[cls], (cls, e)
    if unit in ("raw", ""):
        assert "unit_of_measurement" not in e
    else:
        assert e["unit_of_measurement"] == unit


@pytest.mark.parametrize("quantity, unit, cls", [
    ("temperature", "°C", "temperature"), ("out_temperature", "°C", "temperature"),
    ("humidity", "%", "humidity"), ("in_humidity", "%", "humidity"),
    ("light", "%", None),                # illuminance would need lx
    ("lux", "lx", "illuminance"),
    ("light_raw", "raw", None), ("level", "cm", None),
])
def test_device_class_from_unit_and_quantity(quantity, unit, cls):
    e = expand(discovery.sensor_config("n1", quantity, unit, mqtt())[1])
    assert e.get("device_class") == cls
    assert e["state_class"] == "measurement"


def test_every_device_class_and_unit_pair_is_one_ha_accepts():
    for unit in ["°C", "°F", "K", "%", "lx", "lm", "V", "mV", "hPa", "Pa", "mbar", "raw", "",
                 "ppm", "W", "dB", "cm", "C", "F", "lux"]:
        for q in ["temperature", "humidity", "light", "x_moisture", "battery", "pressure", "thing"]:
            cls = discovery.dev_class(q, unit)
            assert cls is None or unit in DEVICE_CLASS_UNITS[cls], (q, unit, cls)


def test_expire_after_only_when_positive():
    e = expand(discovery.sensor_config("n1", "temperature", "°C", mqtt(expire_after=900))[1])
    assert e["expire_after"] == 900
    for v in (0, -5):
        assert "expire_after" not in expand(discovery.sensor_config("n1", "temperature", "°C",
                                                                    mqtt(expire_after=v))[1])


def test_switch_payload_for_the_led():
    topic, payload = discovery.switch_config("n1", mqtt(base_topic="flat/2"))
    assert topic == "homeassistant/switch/n1/led/config"
    e = expand(payload)
    assert e["command_topic"] == "flat/2/n1/led/set"
    assert e["state_topic"] == "flat/2/n1/led/state"
    assert (e["payload_on"], e["payload_off"]) == ("ON", "OFF")
    assert e["availability_topic"] == "flat/2/n1/status"


def test_configured_prefix_and_base_topic_are_used():
    topic, payload = discovery.sensor_config("n1", "temperature", "°C",
                                             mqtt(discovery_prefix="ha", base_topic="a/b"))
    assert topic == "ha/sensor/n1/temperature/config"
    assert expand(payload)["state_topic"] == "a/b/n1/state"


def test_odd_characters_stay_valid_json():
    # A base topic or unit with a quote or backslash must not break the payload.
    e = expand(discovery.sensor_config("n1", "level", 'in"\\', mqtt(base_topic='x"y\\z'))[1])
    assert e["unit_of_measurement"] == 'in"\\'
    assert e["state_topic"] == 'x"y\\z/n1/state'


@pytest.mark.parametrize("node, q", [("my node", "temperature"), ("n1", "temp/x"), ("n1", ""),
                                     ("n+1", "t"), ("", "t"), ("n1", "t#")])
def test_bad_ids_are_refused(node, q):
    with pytest.raises(ValueError):
        discovery.sensor_config(node, q, "°C", mqtt())


def test_configs_covers_every_quantity_and_the_led_once():
    units = {"temperature": "°C", "humidity": "%", "light": "%", "light_raw": "raw"}
    pairs = list(discovery.configs("n1", units, mqtt()))
    topics = [t for t, _ in pairs]
    assert len(set(topics)) == len(topics) == 5
    assert "homeassistant/switch/n1/led/config" in topics
    assert {t.split("/")[3] for t in topics} == set(units) | {"led"}
    assert len(list(discovery.configs("n1", units, mqtt(), led=False))) == 4
    assert len({json.loads(text(p))["uniq_id"] for _, p in pairs}) == 5
    # with the node's diagnostics (what the node announces)
    pairs = list(discovery.configs("n1", units, mqtt(), diag=True))
    topics = [t for t, _ in pairs]
    assert len(set(topics)) == len(topics) == 10
    assert len({json.loads(text(p))["uniq_id"] for _, p in pairs}) == 10


def test_fingerprint_tracks_what_was_announced():
    units = {"temperature": "°C", "light": "%"}
    fp = discovery.fingerprint(discovery.configs("n1", units, mqtt()))
    assert isinstance(fp, int) and 0 <= fp < 1 << 24      # a small int on the ESP8266
    # Same content, built again or in another dict order: the same fingerprint.
    assert discovery.fingerprint(discovery.configs("n1", {"light": "%", "temperature": "°C"}, mqtt())) == fp
    changed = [
        discovery.configs("n1", {"temperature": "°F", "light": "%"}, mqtt()),    # a unit
        discovery.configs("n1", {"temperature": "°C", "light": "lx"}, mqtt()),   # a unit -> a class
        discovery.configs("n1", {"temperature": "°C"}, mqtt()),                  # a quantity gone
        discovery.configs("n2", units, mqtt()),                                  # the node id
        discovery.configs("n1", units, mqtt(expire_after=60)),
        discovery.configs("n1", units, mqtt(base_topic="other")),
        discovery.configs("n1", units, mqtt(), led=False),
    ]
    fps = [discovery.fingerprint(p) for p in changed]
    assert fp not in fps and len(set(fps)) == len(fps)
    # Moving text between topic and payload changes it too.
    assert discovery.fingerprint([("ab", "c")]) != discovery.fingerprint([("a", "bc")])


def announced(sensor_entries, **mqtt_over):
    """What the node announces for these sensors: units and the drivers'
    own device classes and precision (sensors.units / sensors.about)."""
    from upynode import assemble
    cfg = config.parse(json.dumps({"wifi": {"ssid": "x"}, "mqtt": {"host": "h"},
                                   "webrepl": {"password": "s3cret"}, "sensors": sensor_entries}))
    sens = assemble.load_sensors(cfg["sensors"], log=lambda m: None)
    pairs = discovery.configs("n1", dict(assemble.sensor_units(sens)), mqtt(**mqtt_over), False, assemble.sensor_about(sens))
    return {t.split("/")[3]: expand(p) for t, p in pairs}


def test_each_driver_declares_unit_class_and_display_precision(world):
    e = announced([{"type": "dht22"}, {"type": "mcp9808", "prefix": "out_"},
                   {"type": "dht11", "prefix": "cellar_", "pin": 13}, {"type": "adc"}])
    got = {q: (v.get("unit_of_measurement"), v.get("device_class"), v.get("suggested_display_precision"))
           for q, v in e.items()}
    assert got == {
        "temperature": ("°C", "temperature", 1), "humidity": ("%", "humidity", 1),
        "out_temperature": ("°C", "temperature", 2),
        "cellar_temperature": ("°C", "temperature", 0), "cellar_humidity": ("%", "humidity", 0),
        "light": ("%", None, 1), "light_raw": (None, None, 0),
    }
    for q, v in e.items():
        cls = v.get("device_class")
        assert cls is None or v["unit_of_measurement"] in DEVICE_CLASS_UNITS[cls], (q, v)


def test_an_adc_in_lux_or_volts_gets_its_class_from_the_unit(world):
    e = announced([{"type": "adc", "quantity": "lux", "unit": "lx", "max": 1000},
                   {"type": "adc", "quantity": "vbat", "unit": "V", "max": 4.2, "prefix": "b_"}])
    assert e["lux"]["device_class"] == "illuminance" and e["b_vbat"]["device_class"] == "voltage"
    assert "device_class" not in e["lux_raw"]


def test_without_the_drivers_word_payloads_are_as_before():
    # configs() with units only (no about): classes from the units, no precision.
    (_, p), = discovery.configs("n1", {"temperature": "°C"}, mqtt(), False)
    e = expand(p)
    assert e["device_class"] == "temperature" and "suggested_display_precision" not in e


@pytest.mark.parametrize("quantity, shown", [
    ("temperature", "Temperature"), ("kitchen_temperature", "Kitchen temperature"),
    ("light_raw", "Light raw"), ("b_vbat", "B vbat"), ("co2-ppm", "Co2-ppm")])
def test_names_are_readable_and_leave_the_device_name_to_home_assistant(quantity, shown):
    # HA (2023.8 on) names an MQTT entity with a device "<device name>
    # <entity name>"; the entity names itself, sentence case, no node id.
    e = expand(discovery.sensor_config("n1", quantity, "°C", mqtt())[1])
    assert e["name"] == shown
    assert expand(discovery.switch_config("n1", mqtt())[1])["name"] == "LED"


def diag_configs(node, c):
    """The node's diagnostic entities alone: no sensor, no switch."""
    return discovery.configs(node, {}, c, led=False, diag=True)


def diagnostics(**over):
    return {t.split("/")[3]: expand(p) for t, p in diag_configs("attic-1", mqtt(**over))}


def test_diagnostics_come_from_the_state_message_and_info():
    d = diagnostics()
    assert list(d) == ["rssi", "heap", "up", "q", "reset"]
    for obj, e in d.items():
        check_common("homeassistant/sensor/attic-1/%s/config" % obj,
                     dict(diag_configs("attic-1", mqtt()))["homeassistant/sensor/attic-1/%s/config" % obj],
                     "sensor", "attic-1", obj)
        assert e["entity_category"] == "diagnostic"
    got = {k: (e["name"], e.get("unit_of_measurement"), e.get("device_class"), e.get("state_class"),
               e["state_topic"], e["value_template"]) for k, e in d.items()}
    assert got["rssi"] == ("WiFi signal", "dBm", "signal_strength", "measurement", "home/attic-1/state",
                           "{{value_json.get('rssi','None')}}")
    assert got["heap"] == ("Free memory", "B", "data_size", "measurement", "home/attic-1/state",
                           "{{value_json.get('heap','None')}}")
    assert got["up"] == ("Uptime", "s", "duration", "total_increasing", "home/attic-1/state",
                         "{{value_json.get('up','None')}}")
    assert got["q"] == ("Queued readings", None, None, "measurement", "home/attic-1/state",
                        "{{value_json.get('q',0)}}")  # absent: nothing queued
    # reset is in one state message per boot: HA reads it from the retained
    # info message, which survives HA's restart
    assert got["reset"][:5] == ("Last reset cause", None, None, None, "home/attic-1/info")
    # the node's address: an attribute of its WiFi signal
    assert d["rssi"]["json_attributes_topic"] == "home/attic-1/info"
    for k, e in d.items():
        cls = e.get("device_class")
        assert cls is None or e["unit_of_measurement"] in DEVICE_CLASS_UNITS_DIAG[cls], (k, e)


DEVICE_CLASS_UNITS_DIAG = {"signal_strength": {"dB", "dBm"}, "duration": {"d", "h", "min", "s", "ms"},
                           "data_size": {"B", "kB", "KiB", "MB", "MiB"}}


def test_diagnostics_expire_with_the_readings_but_not_the_reset_cause():
    d = diagnostics(expire_after=600)
    assert {k for k, e in d.items() if e.get("expire_after") == 600} == {"rssi", "heap", "up", "q"}


def test_the_adcs_raw_counts_are_a_diagnostic():
    e = expand(discovery.sensor_config("n1", "light_raw", "raw", mqtt())[1])
    assert e["entity_category"] == "diagnostic"
    assert "entity_category" not in expand(discovery.sensor_config("n1", "light", "%", mqtt())[1])


class Client:
    """umqtt's client as _announce uses it: what it is given to publish, and
    what is written to its socket (the saved announcement, streamed: see
    Mqtt._announce), read back as MQTT PUBLISH packets, are recorded as
    (topic, payload bytes, retain). From the `fail`-th message on, both
    raise `exc`: OSError (a connection lost), or MemoryError."""

    dropped = 0  # upynode.sock.Sock's: no read thrown away

    def __init__(self, fail=None, exc=OSError(104)):
        self.sent, self.fail, self.buf, self.exc = [], fail, b"", exc
        self.sock = self
        self.rx = 0

    def check_msg(self):  # no message waiting
        return None

    def ping(self):
        pass

    def _check(self):
        if self.fail is not None and len(self.sent) >= self.fail:
            raise self.exc

    def publish(self, topic, msg, retain=False, qos=0):
        self._check()
        self.sent.append((topic.decode(), msg, retain))

    def _send_str(self, s):  # umqtt.simple's
        self.write(len(s).to_bytes(2, "big"))
        self.write(s)

    def write(self, data, n=None):
        self._check()
        self.buf += bytes(data[:n] if n is not None else data)
        while self.buf:
            size, shift, i = 0, 0, 1  # the remaining length, 7 bits a byte
            while True:
                if i >= len(self.buf):
                    return
                b = self.buf[i]
                size |= (b & 0x7F) << shift
                shift += 7
                i += 1
                if not b & 0x80:
                    break
            if len(self.buf) < i + size:
                return
            head, body, self.buf = self.buf[0], self.buf[i:i + size], self.buf[i + size:]
            assert head & 0xF6 == 0x30, "not a PUBLISH at QoS 0: %#x" % head
            n = body[0] << 8 | body[1]
            self.sent.append((body[2:2 + n].decode(), body[2 + n:], bool(head & 1)))


def saved(tmp_path, units=(("temperature", "°C"),), led=False, c=None, old=""):
    """discovery.write() as the boot runs it (startup.announcement): the
    announcement in tmp_path/discovery.bin; -> the Mqtt that streams it."""
    from upynode import mqtt
    c = c or config.parse(json.dumps({"wifi": {"ssid": "x"}, "mqtt": {"host": "127.0.0.1"},
                                      "webrepl": {"password": "s3cret"}}))["mqtt"]
    discovery.write(str(tmp_path / discovery.FILE), "key n1", "n1", dict(units), c, led, None, old)
    return c


def packets(data):
    """(topic, payload, retain) of every MQTT PUBLISH in data."""
    c = Client()
    c.write(data)
    assert not c.buf  # whole packets, nothing left over
    return c.sent


def test_the_saved_announcement_is_every_config_as_a_retained_packet(tmp_path):
    c = saved(tmp_path, [("temperature", "°C"), ("humidity", "%")], led=True)
    data = (tmp_path / discovery.FILE).read_bytes()
    key, fp, n, rest = data.split(b"\n", 3)
    assert key == b"key n1" and n == b"8"  # 2 sensors, 5 diagnostics, the switch
    assert fp.split() == [b"%d" % discovery.fingerprint(discovery.configs(
        "n1", {"temperature": "°C", "humidity": "%"}, c, True, None, True)), b"humidity,temperature", b"+led"]
    want = [(t, "".join(discovery.flat(p)).encode(), True)
            for t, p in discovery.configs("n1", {"temperature": "°C", "humidity": "%"}, c, True, None, True)]
    assert packets(rest) == want


def test_a_quantity_or_the_switch_gone_since_the_last_announcement_is_removed(tmp_path):
    saved(tmp_path, [("temperature", "°C")], old="123 humidity,temperature +led")
    rest = (tmp_path / discovery.FILE).read_bytes().split(b"\n", 3)[3]
    sent = packets(rest)
    assert sent[-2:] == [("homeassistant/sensor/n1/humidity/config", b"", True),
                         ("homeassistant/switch/n1/led/config", b"", True)]
    # what an older firmware saved (three lines) reads the same
    saved(tmp_path, [("temperature", "°C")], old="123\nhumidity,temperature\n+led")
    assert packets((tmp_path / discovery.FILE).read_bytes().split(b"\n", 3)[3])[-2:] == sent[-2:]


def test_an_announcement_cut_short_is_made_again_at_the_next_connect(world, tmp_path, monkeypatch):
    from upynode import mqtt
    monkeypatch.chdir(tmp_path)  # discovery.bin, discovery.fp
    c = saved(tmp_path)
    m = mqtt.Mqtt(c, "n1", [("temperature", "°C")], None, lambda s: None)
    m.client = Client(fail=3)
    with pytest.raises(OSError):
        m._announce()
    assert m.announce == mqtt._CHANGED and not (tmp_path / mqtt.FP_FILE).exists()
    m.client = Client()
    m._announce()
    assert m.announce == mqtt._NOTHING and (tmp_path / mqtt.FP_FILE).exists()
    topics = [t for t, _, r in m.client.sent if r]
    # the info first (retained), then the sensor and the node's diagnostics
    assert topics[0] == "home/n1/info" and json.loads(m.client.sent[0][1])["reset"] == 0
    assert sorted(topics[1:]) == sorted("homeassistant/sensor/n1/%s/config" % o
                                        for o in ("temperature", "rssi", "heap", "up", "q", "reset"))
    # the next boot: the same entities, not announced again; the info is
    m.announce = mqtt._CHANGED
    m.client = Client()
    m._announce()
    assert [t for t, _, _ in m.client.sent] == ["home/n1/info"]
    # Home Assistant restarted: all of them again
    m.announce = mqtt._AGAIN
    m.client = Client()
    m._announce()
    assert len(m.client.sent) == 7


def test_without_a_saved_announcement_nothing_is_announced_and_the_log_says_why(world, tmp_path, monkeypatch):
    from upynode import mqtt
    monkeypatch.chdir(tmp_path)
    lines = []
    m = mqtt.Mqtt(mqtt_cfg(), "n1", [("temperature", "°C")], None, lines.append)
    m.client = Client()
    m._announce()
    assert [t for t, _, _ in m.client.sent] == ["home/n1/info"] and "discovery.bin is missing" in lines[-1]


def mqtt_cfg():
    return config.parse(json.dumps({"wifi": {"ssid": "x"}, "mqtt": {"host": "127.0.0.1"},
                                    "webrepl": {"password": "s3cret"}}))["mqtt"]


def test_an_online_storm_starts_at_most_one_announcement_per_30_s(world, tmp_path, monkeypatch, clock):
    from upynode import mqtt
    monkeypatch.chdir(tmp_path)
    c = saved(tmp_path)
    m = mqtt.Mqtt(c, "n1", [("temperature", "°C")], None, lambda s: None)
    m.client = Client()
    m.connect = lambda: None
    assert m.send(None, None)
    announced = [len(m.client.sent)]
    for _ in range(400):  # 20 a second for 20 s, polled as the loop polls
        m._message(b"homeassistant/status", b"online")
        m.poll()
        clock.sleep_ms(50)
        announced.append(len(m.client.sent))
    steps = [i for i in range(1, len(announced)) if announced[i] > announced[i - 1]]
    assert steps == []  # within 30 s of the last announcement: none yet
    clock.sleep_ms(10000)
    m.poll()  # ... and the one it owes, once the 30 s are up
    assert len(m.client.sent) == announced[-1] + 7 and m.announce == mqtt._NOTHING


class BigSock:
    """What upynode.sock.Sock leaves after a read over MAX_IN."""
    dropped = 0


def test_an_oversized_message_is_reported_once_per_topic_and_ignored(world):
    from upynode import mqtt
    lines = []
    led = type("Led", (), {"mode": "remote", "set": lambda self, on: lines.append(("set", on))})()
    m = mqtt.Mqtt(mqtt_cfg(), "n1", [("temperature", "°C")], led, lines.append)
    m.client = type("C", (), {"sock": BigSock()})()
    for _ in range(3):
        m.client.sock.dropped = 100000
        m._message(b"home/n1/led/set", b"")
        m.client.sock.dropped = 10000
        m._message(b"homeassistant/status", b"")
    assert lines == ["mqtt: ignored a message of 100000 bytes on home/n1/led/set (commands are short)",
                     "mqtt: ignored a message of 10000 bytes on homeassistant/status (commands are short)"]
    assert m.announce == mqtt._CHANGED and m.client.sock.dropped == 0


def test_an_announcement_the_heap_has_no_room_for_waits_and_the_readings_go_on(world, tmp_path, monkeypatch, clock):
    from upynode import mqtt
    monkeypatch.chdir(tmp_path)  # discovery.bin, discovery.fp
    c = saved(tmp_path)
    lines = []
    m = mqtt.Mqtt(c, "n1", [("temperature", "°C")], None, lines.append)
    clients = []

    def connect():  # each connection a fresh client; the first runs out of memory announcing
        m.client = Client(fail=2, exc=MemoryError()) if not clients else Client()
        clients.append(m.client)
    m.connect = connect

    assert m.send(None, None)  # before the first reading (Node.start): no MemoryError leaves it
    assert "not enough memory to announce" in lines[-1] and "again in 60 s" in lines[-1]
    assert len(clients) == 2 and not (tmp_path / mqtt.FP_FILE).exists()
    assert m.send({"temperature": 20.5}, '{"temperature":20.5}')
    assert [t for t, _, _ in clients[1].sent] == ["home/n1/state"]  # the reading, no announcement yet
    clock.sleep_ms(61000)
    assert m.send({"temperature": 20.75}, '{"temperature":20.75}')
    topics = [t for t, _, _ in clients[1].sent]
    assert "homeassistant/sensor/n1/temperature/config" in topics and topics[-1] == "home/n1/state"
    assert (tmp_path / mqtt.FP_FILE).exists() and m.announce == mqtt._NOTHING and len(clients) == 2


def test_ha_shows_the_firmware_that_runs_and_an_update_taken_back(world, tmp_path, monkeypatch):
    # issue 19: the build's id (upynode build: lib/upynode/build.txt) names
    # the firmware in the device block, and the retained ~/info carries it,
    # with the reason of a rollback (update.py's romfs.rolledback), as
    # attributes of "Last reset cause".
    from upynode import mqtt, startup
    monkeypatch.chdir(tmp_path)
    c = config.parse(json.dumps({"wifi": {"ssid": "x"}, "mqtt": {"host": "127.0.0.1"},
                                 "webrepl": {"password": "s3cret"}}))
    startup.save_announcement(str(tmp_path / discovery.FILE), c, "key n1 0.3.0+ab12cd34", "n1", "",
                              "0.3.0+ab12cd34")
    assert discovery.SW == discovery.VERSION  # not carried over to the next board's announcement
    sent = packets((tmp_path / discovery.FILE).read_bytes().split(b"\n", 3)[3])
    reset = json.loads([p for t, p, _ in sent if t.endswith("/reset/config")][0])
    assert reset["dev"]["sw"] == "0.3.0+ab12cd34" and reset["o"]["sw"] == "0.3.0+ab12cd34"
    assert reset["json_attr_t"] == "~/info" and "value_json.fw" in reset["json_attr_tpl"]
    m = mqtt.Mqtt(c["mqtt"], "n1", [], None, lambda s: None)
    m.client = Client()
    m._announce()
    info = json.loads(m.client.sent[0][1])
    assert info["fw"] == "0.3.0+ab12cd34" and "update" not in info
    (tmp_path / "romfs.rolledback").write_text("the new image delivered no reading in 3 boots: back to the "
                                               "previous one (build ef56ab78 taken back)")
    m.client = Client()
    m._announce()
    info = json.loads(m.client.sent[0][1])
    assert info["update"].endswith("(build ef56ab78 taken back)") and info["fw"] == "0.3.0+ab12cd34"
