"""config.json: defaults, validation, and error messages that name the
key, the value and what was expected -- without ever showing a secret."""
import json

import pytest

from upynode import config

GOOD = {"wifi": {"ssid": "home", "password": "pw-secret"}, "mqtt": {"host": "192.0.2.10"},
        "webrepl": {"password": "wr-pass"}}


def parse(d):
    return config.parse(json.dumps(d))


def merged(**over):
    d = json.loads(json.dumps(GOOD))
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(d.get(k), dict):
            d[k].update(v)
        else:
            d[k] = v
    return d


def test_whole_numbers_written_as_floats_are_kept_as_ints():
    # JSON has one number type; the chip's ticks_add(), range() and Pin()
    # refuse a float: 60.0 left as it is resets the node at every boot.
    c = parse(merged(interval_s=60.0, mqtt={"port": 1883.0, "keepalive": 60.0},
                     led={"pin": 2.0},
                     sensors=[{"type": "dht22", "pin": 14.0, "retries": 1.0},
                              {"type": "mcp9808", "address": 24.0, "prefix": "out_"}]))
    got = [c["interval_s"], c["mqtt"]["port"], c["mqtt"]["keepalive"], c["led"]["pin"],
           c["sensors"][0]["pin"], c["sensors"][0]["retries"], c["sensors"][1]["address"]]
    assert got == [60, 1883, 60, 2, 14, 1, 24]
    assert all(type(v) is int for v in got)


def error_of(d):
    with pytest.raises(config.ConfigError) as e:
        parse(d) if isinstance(d, dict) else config.parse(d)
    return str(e.value)


def test_defaults_fill_what_the_file_leaves_out():
    c = parse(GOOD)
    assert c["interval_s"] == 60
    assert c["mqtt"]["port"] == 1883 and c["mqtt"]["base_topic"] == "home"
    assert c["wifi"]["password"] == "pw-secret" and c["wifi"]["retries"] == 3
    assert c["led"] == {"pin": 2, "invert": True, "mode": "heartbeat", "quantity": "temperature", "threshold": 20.0,
                        "entity_id": ""}


def test_sensor_entries_get_their_drivers_defaults():
    c = parse(merged(sensors=[{"type": "mcp9808"}, {"type": "dht22", "prefix": "room_"}, {"type": "adc"}]))
    mcp, dht, adc = c["sensors"]
    assert (mcp["scl"], mcp["sda"], mcp["address"]) == (5, 4, 0x18)
    assert dht["pin"] == 14 and dht["retries"] == 1
    assert adc["quantity"] == "light" and adc["unit"] == "%"


@pytest.mark.parametrize("doc, words", [
    ("{", ["not valid JSON"]),
    ("[]", ["config", "JSON object"]),
    ({"mqtt": {"host": "h"}}, ["wifi.ssid", "WiFi"]),
    (merged(interval_s="60"), ["interval_s", '"60"', "number"]),
    (merged(interval_s=0), ["interval_s", "0", "1 to 86400"]),
    (merged(wifi={"timeout_s": 2.5}), ["wifi.timeout_s", "2.5", "whole number"]),
    (merged(wifi={"ssid": 5}), ["wifi.ssid", "5", "string"]),
    (merged(mqtt={"host": ""}), ["mqtt.host", "broker"]),
    (merged(mqtt={"port": 70000}), ["mqtt.port", "70000"]),
    (merged(mqtt={"host": "mqtt://admin:pw@10.0.0.1"}), ["mqtt.host", "no mqtt://", "mqtt.password"]),
    (merged(mqtt={"host": "10.0.0.1:1883"}), ["mqtt.host", "mqtt.port"]),
    (merged(mqtt={"base_topic": "home/#"}), ["mqtt.base_topic", "home/#"]),
    (merged(mqtt={"keepalive": 5}), ["mqtt.keepalive", "5", "at least 10"]),
    (merged(mqtt={"expire_after": 60}, interval_s=60), ["mqtt.expire_after", "60", "unavailable"]),
    (merged(interval_s=1e999), ["interval_s", "finite number"]),
    (merged(http={"fields": {"temperature": 1e999}}), ["http.fields.temperature", "finite number"]),
    (merged(webrepl={"password": ""}), ["webrepl.password", "4 to 9", "guards"]),
    # 8 characters, 10 bytes: WebREPL on a chip would not start (extmod/modwebrepl.c counts bytes)
    (merged(webrepl={"password": "p\u00e4ssw\u00f6rt"}), ["webrepl.password", "4 to 9 bytes"]),
    (merged(transports=["http"], http={"target": "flask", "url": "https://192.0.2.5", "api_key": "k"}),
     ["http.url", "https://192.0.2.5", "TLS"]),
    (merged(transports=["http"], homeassistant={"url": "http://192.0.2.5:8123"}), ["homeassistant.token", "long-lived"]),
    (merged(transports=["http"], homeassistant={"url": "http://192.0.2.5:8123", "api_password": "old"}),
     ["homeassistant.token", "removed from Home Assistant in 2019"]),
    (merged(led={"mode": "ha_state", "entity_id": "kitchen"},
            homeassistant={"url": "http://192.0.2.5:8123", "token": "t"}), ["led.entity_id", "kitchen"]),
    (merged(mqtt={"format": "xml"}), ["mqtt.format", "xml"]),
    (merged(led={"pin": 1}), ["led.pin", "1"]),
    (merged(sensors=[{"type": "dht22", "pin": 2}]), ["led.pin", "GPIO2", "sensors[0].pin"]),
    (merged(sensors=[{"type": "dht22", "pin": 15}]), ["sensors[0].pin", "15", "boot"]),
    (merged(sensors=[{"type": "dht22", "pin": 5}, {"type": "mcp9808", "prefix": "k_"}]),
     ["sensors[1].scl", "GPIO5", "sensors[0].pin"]),
    (merged(mqtt={"hots": "x"}), ["mqtt.hots", "unknown key", "host"]),
    (merged(led={"mode": "blink"}), ["led.mode", "blink", "heartbeat"]),
    (merged(led={"pin": 6}), ["led.pin", "6", "GPIO"]),
    (merged(led={"invert": "yes"}), ["led.invert", "bool"]),
    (merged(led={"mode": "threshold", "quantity": "temperature"}), ["led.quantity", "temperature"]),
    (merged(sensors=[{"type": "bmp280"}]), ["sensors[0].type", "bmp280", "adc, dht11, dht22, ds18b20, mcp9808"]),
    (merged(sensors=[{"type": "dht"}]), ["sensors[0].type", '"dht"', "dht11"]),
    (merged(sensors=[{"type": "../x"}]), ["sensors[0].type", '"../x"']),
    (merged(sensors=[{"type": 7}]), ["sensors[0].type", "7"]),
    (merged(sensors=[{"prefix": "a_"}]), ["sensors[0].type", "null"]),
    (merged(sensors=[{"type": "dht11", "retries": 9}]), ["sensors[0].retries", "9", "0 to 5"]),
    (merged(sensors=[{"type": "mcp9808", "address": 200}]), ["sensors[0].address", "200", "8 to 119"]),
    (merged(sensors=[{"type": "adc", "min": 50, "max": 50}]), ["sensors[0].max", "50", "span"]),
    (merged(sensors=[{"type": "adc", "quantity": "soil moisture"}]), ["sensors[0].quantity", "soil moisture"]),
    (merged(sensors=[{"type": "mcp9808", "sda": 9}]), ["sensors[0].sda", "9", "GPIO"]),
    (merged(sensors=[{"type": "mcp9808"}, {"type": "dht22", "pin": 4, "prefix": "k_"}]),
     ["sensors[1].pin", "GPIO4", "sensors[0].sda"]),
    (merged(sensors=[{"type": "adc"}], led={"mode": "threshold", "quantity": "temperature"}),
     ["led.quantity", "temperature", "light, light_raw"]),
    (merged(sensors=[{"type": "dht22", "pin": 17}]), ["sensors[0].pin", "17", "GPIO"]),
    (merged(sensors=[{"type": "mcp9808", "adress": 24}]), ["sensors[0].adress", "unknown key"]),
    (merged(sensors=[{"type": "mcp9808"}, {"type": "dht11"}]), ["sensors[1]", "temperature", "prefix"]),
    (merged(sensors={"type": "adc"}), ["sensors", "list"]),
    (merged(node_id="kitchen node"), ["node_id", "kitchen node"]),
    (merged(transports=["mqtt", "lora"]), ["transports", "lora"]),
])
def test_errors_name_key_value_and_expectation(doc, words):
    msg = error_of(doc)
    for w in words:
        assert w in msg, msg


def test_secrets_never_appear_in_errors():
    msg = error_of(merged(webrepl={"password": "toolongpassword"}))
    assert "webrepl.password" in msg and "4 to 9" in msg
    assert "toolongpassword" not in msg
    msg = error_of(merged(mqtt={"password": 1234567}))
    assert "mqtt.password" in msg and "1234567" not in msg


def test_masked_hides_every_secret_and_keeps_the_rest():
    c = parse(merged(mqtt={"password": "mq-secret"}, homeassistant={"token": "tok"}, webrepl={"password": "abcd"}))
    text = json.dumps(config.masked(c))
    for secret in ("pw-secret", "mq-secret", "tok\"", "abcd"):
        assert secret not in text
    assert config.masked(c)["wifi"]["ssid"] == "home"
    assert config.masked(c)["wifi"]["password"] == "***"


def test_i2c_sensors_may_share_their_bus():
    c = parse(merged(sensors=[{"type": "mcp9808"}, {"type": "mcp9808", "address": 25, "prefix": "out_"}]))
    assert [s["address"] for s in c["sensors"]] == [24, 25]


def test_api_password_is_masked_too():
    c = parse(merged(homeassistant={"api_password": "legacy"}))
    assert "legacy" not in json.dumps(config.masked(c))


def test_threshold_led_accepts_a_measured_quantity():
    c = parse(merged(sensors=[{"type": "mcp9808", "prefix": "kitchen_"}],
                     led={"mode": "threshold", "quantity": "kitchen_temperature", "threshold": 20}))
    assert c["led"]["threshold"] == 20


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(config.ConfigError) as e:
        config.load(str(tmp_path / "config.json"))
    assert "config.json is missing" in str(e.value)


def test_the_example_config_is_valid_and_shows_every_key():
    import os
    from upynode_cli.project import REPO
    path = os.path.join(REPO, "config.example.json")
    with open(path) as f:
        example = json.load(f)
    config.parse(json.dumps(example))

    def keys(d, prefix=""):
        out = set()
        for k, v in d.items():
            out.add(prefix + k)
            if isinstance(v, dict) and prefix + k not in config.MAPS:
                out |= keys(v, prefix + k + ".")
        return out
    assert keys(config.DEFAULTS) <= keys(example)


def test_every_driver_fills_in_its_own_defaults():
    c = parse(merged(sensors=[{"type": "dht11"}, {"type": "ds18b20", "prefix": "t_"},
                              {"type": "adc", "quantity": "lux", "unit": "lx"}]))
    assert [sorted(s) for s in c["sensors"]] == [
        ["pin", "prefix", "retries", "type"], ["pin", "prefix", "rom", "type"],
        ["max", "min", "prefix", "quantity", "type", "unit"]]


def test_validation_leaves_no_driver_declarations_in_ram():
    # sensor_<name> modules are needed at boot only: config releases them.
    import sys
    parse(merged(sensors=[{"type": "dht22"}, {"type": "mcp9808", "prefix": "k_"}]))
    assert not [m for m in sys.modules if m.startswith("upynode.sensor_")]


def test_a_sensor_type_no_driver_declares_leaves_none_loaded_either():
    import sys
    error_of(merged(sensors=[{"type": "bmp280"}]))
    assert not [m for m in sys.modules if m.startswith("upynode.sensor_")]


def test_a_refused_sensor_leaves_no_driver_declarations_either():
    import sys
    error_of(merged(sensors=[{"type": "dht22", "pin": 15}]))
    assert not [m for m in sys.modules if m.startswith("upynode.sensor_")]


def test_a_driver_that_cannot_load_is_named_with_its_reason(tmp_path, monkeypatch):
    # Not "unknown type": the driver is there, its own import fails (a bad
    # deploy, a missing dependency). The other types are still listed.
    import upynode
    (tmp_path / "sensor_broken.py").write_text('import nonexistent_dependency\nTYPES = ("broken",)\n')
    monkeypatch.setattr(upynode, "__path__", list(upynode.__path__) + [str(tmp_path)])
    err = error_of(merged(sensors=[{"type": "broken"}]))
    assert 'sensors[0].type = "broken"' in err and "nonexistent_dependency" in err
    err = error_of(merged(sensors=[{"type": "bme280"}]))
    assert "adc, dht11, dht22, ds18b20, mcp9808" in err


# --- issue 7: hostile files -------------------------------------------------

def write(tmp_path, data):
    p = tmp_path / "config.json"
    p.write_bytes(data if isinstance(data, bytes) else json.dumps(data).encode())
    return str(p)


def load_error(path):
    with pytest.raises(config.ConfigError) as e:
        config.load(path)
    return str(e.value)


def test_a_latin1_file_is_named_with_its_first_bad_byte_and_offset(tmp_path):
    data = json.dumps(merged(wifi={"password": "caf\u00e9-secret"}), ensure_ascii=False).encode("latin-1")
    msg = load_error(write(tmp_path, data))
    at = data.index(b"\xe9")
    assert msg.startswith("%s is not UTF-8 text (byte 0xe9 at offset %d)" % (tmp_path / "config.json", at)), msg
    assert "secret" not in msg


@pytest.mark.parametrize("data", [b"\xc3(", b"ab\xed\xa0\x80", b"\xe0\x80\x80", b"\xf8\x88", b"ok\xe2\x82",
                                  b"\xf4\x90\x80\x80", b"\x80", b"\xc1\xbf"])
def test_the_bad_byte_is_where_cpython_finds_it(data):
    with pytest.raises(UnicodeDecodeError) as e:
        data.decode()
    assert config._bytes(data) == e.value.start


def test_an_oversized_file_is_refused_by_its_size_without_reading_it(tmp_path, monkeypatch):
    # One wrong value padded with spaces: 6 KB ran setup mode out of memory.
    text = json.dumps(merged(interval_s="often")) + " " * 6000
    path = write(tmp_path, text.encode())
    import builtins
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda p, *a, **k: pytest.fail("read %s" % p) if p == path
                        else real_open(p, *a, **k))
    msg = load_error(path)
    assert msg == ("%s is %d bytes, over the 4096 a node reads (its RAM is ~32 KB): remove what is not needed"
                   % (path, len(text)))


def test_text_over_the_limit_is_refused_by_the_host_tool_too():
    msg = error_of(json.dumps(merged()) + " " * 4096)
    assert "config.json is %d bytes, over the 4096 a node reads" % (len(json.dumps(merged())) + 4096) in msg


@pytest.mark.parametrize("depth, words", [
    (7, "sensors[0][0][0][0][0]: nested more than 5 levels deep"),  # parsed, then named by key
    (1000, "config.json: nested more than 5 levels deep"),  # refused before parsing: it took the whole heap
    (10000, "config.json is 20013 bytes, over the 4096")])
def test_deep_nesting_is_one_clear_error(depth, words):
    msg = error_of('{"sensors": ' + "[" * depth + "]" * depth + "}")
    assert msg.startswith(words), msg


def test_brackets_in_strings_are_no_nesting():
    c = parse(merged(wifi={"ssid": "[{" * 40 + '\\"['}))
    assert c["wifi"]["ssid"] == "[{" * 40 + '\\"['


@pytest.mark.parametrize("section", ["wifi", "webrepl", "mqtt", "homeassistant", "http"])
@pytest.mark.parametrize("value", ["wrPW9x", ["wrPW9x"], 31337])
def test_a_section_written_as_a_value_never_shows_it(section, value):
    msg = error_of(merged(**{section: value}))
    assert msg.startswith(section + " = ***: expected a JSON object"), msg
    assert "wrPW9x" not in msg and "31337" not in msg


def test_a_whole_file_that_is_one_string_is_not_shown():
    msg = error_of('"hunter2secret"')
    assert msg.startswith("config = ***") and "hunter2" not in msg


@pytest.mark.parametrize("key, over", [
    ("homeassistant.url", {"transports": ["http"], "homeassistant": {"url": "https://admin:hapw123@192.0.2.5", "token": "t"}}),
    ("http.url", {"transports": ["http"], "http": {"target": "flask", "url": "ftp://me:hapw123@h", "api_key": "k"}}),
    ("sensors", {"sensors": "http://me:hapw123@h/"}),
])
def test_the_password_in_a_url_is_masked(key, over):
    msg = error_of(merged(**over))
    assert msg.startswith(key) and "hapw123" not in msg and "://me:***@" in msg.replace("admin", "me"), msg


def test_masked_hides_url_passwords_for_config_get():
    c = parse(merged(transports=["http"], http={"target": "receiver", "url": "http://u:pw77@192.0.2.5:8080",
                                                "api_key": "k"}))
    assert config.masked(c)["http"]["url"] == "http://u:***@192.0.2.5:8080"


@pytest.mark.parametrize("url", ["http://u:pw/77@192.0.2.5", "http://u:pw@77@192.0.2.5", "http://u:pw:77@192.0.2.5/x"])
def test_a_url_password_with_a_slash_an_at_or_a_colon_is_masked_whole(url):
    c = parse(merged(transports=["http"], http={"target": "receiver", "url": url, "api_key": "k"}))
    shown = config.masked(c)["http"]["url"]
    assert shown.startswith("http://u:***@192.0.2.5") and "pw" not in shown and "77" not in shown


@pytest.mark.parametrize("doc, key", [
    ('{"sensors": [{"type": "adc", "max": 1e999}]}', "sensors[0].max"),
    ('{"led": {"threshold": -1e999}}', "led.threshold"),
    ('{"sensors": [{"type": "adc", "min": NaN}]}', "sensors[0].min"),
    ('{"interval_s": Infinity}', "interval_s"),
    ('{"mqtt": {"hots": 1e400}}', "mqtt.hots"),
    ('[1e999]', "config[0]"),
])
def test_infinity_and_nan_are_refused_naming_the_key(doc, key):
    msg = error_of(doc)
    assert msg.startswith(key + ": expected a finite number"), msg


@pytest.mark.parametrize("over, words", [
    ({"mqtt": {"base_topic": "home\u0000x"}}, ["mqtt.base_topic", "control"]),
    ({"mqtt": {"base_topic": "home\nx"}}, ["mqtt.base_topic", "control"]),
    ({"mqtt": {"base_topic": "ho\u007fme"}}, ["mqtt.base_topic"]),
    ({"node_id": "kitchen\u0000"}, ["node_id", "letters, digits"]),
    ({"mqtt": {"discovery_prefix": "homeassistant\u0001"}}, ["mqtt.discovery_prefix"]),
    ({"sensors": [{"type": "adc", "unit": "lx\u0000"}]}, ["sensors[0].unit", "control"]),
    ({"sensors": [{"type": "adc", "unit": "\u00b0C\n"}]}, ["sensors[0].unit", "control"]),
    ({"sensors": [{"type": "adc", "unit": "x" * 17}]}, ["sensors[0].unit", "0 to 16"]),
    ({"transports": ["mqtt", "mqtt"]}, ["transports", '["mqtt", "mqtt"]', "each transport once"]),
])
def test_what_breaks_topics_units_and_transports_is_refused(over, words):
    msg = error_of(merged(**over))
    for w in words:
        assert w in msg, msg


@pytest.mark.parametrize("kind", [{}, [], None, 1.5])
def test_a_sensor_type_of_the_wrong_kind_is_one_error(kind):
    msg = error_of(merged(sensors=[{"type": kind}]))
    assert msg.startswith("sensors[0].type = %s: expected one of adc" % json.dumps(kind))


# --- issue 7: new keys --------------------------------------------------------

def test_new_keys_have_their_defaults():
    c = parse(GOOD)
    assert c["backlog"] == {"max_kb": 32, "per_cycle": 5} and c["retry"] == {"min_s": 2, "max_s": 300}
    assert (c["sleep"], c["awake_max_s"], c["ntp"]) == ("none", 20, {"host": "pool.ntp.org"})
    assert c["wifi"]["ifconfig"] == []


def test_new_keys_accept_what_they_promise():
    ip = ["192.168.1.50", "255.255.255.0", "192.168.1.1", "192.168.1.1"]
    c = parse(merged(backlog={"max_kb": 256, "per_cycle": 50}, retry={"min_s": 5, "max_s": 5}, sleep="deep",
                     interval_s=10, awake_max_s=120.0, ntp={"host": ""}, wifi={"ifconfig": ip},
                     transports=["mqtt", "http"],
                     http={"target": "receiver", "url": "http://192.0.2.5:8080", "api_key": "rk"}))
    assert c["awake_max_s"] == 120 and type(c["awake_max_s"]) is int and c["wifi"]["ifconfig"] == ip
    for host in ("192.168.1.1", "time.example", "ntp-1.lan"):
        assert parse(merged(ntp={"host": host}))["ntp"]["host"] == host


@pytest.mark.parametrize("over, words", [
    ({"backlog": {"max_kb": 0}}, ["backlog.max_kb = 0", "1 to 256"]),
    ({"backlog": {"max_kb": 257}}, ["backlog.max_kb = 257", "1 to 256"]),
    ({"backlog": {"per_cycle": 51}}, ["backlog.per_cycle = 51", "1 to 50"]),
    ({"backlog": {"max_kb": "32"}}, ["backlog.max_kb", "number"]),
    ({"backlog": 32}, ["backlog = 32", "object"]),
    ({"retry": {"min_s": 0}}, ["retry.min_s = 0", "1 to 86400"]),
    ({"retry": {"min_s": 30, "max_s": 10}}, ["retry.max_s = 10", "30 to 86400"]),
    ({"retry": {"max_s": 86401}}, ["retry.max_s = 86401"]),
    ({"sleep": "light"}, ["sleep = \"light\"", "\"none\" or \"deep\""]),
    ({"sleep": True}, ["sleep", "string"]),
    ({"awake_max_s": 4}, ["awake_max_s = 4", "5 to 120"]),
    ({"awake_max_s": 121}, ["awake_max_s = 121"]),
    ({"sleep": "deep", "interval_s": 5}, ["interval_s = 5", "at least 10", "deep"]),
    ({"sleep": "deep", "interval_s": 60, "led": {"mode": "remote"}}, ["led.mode = \"remote\"", "takes no commands"]),
    ({"ntp": {"host": "pool ntp org"}}, ["ntp.host = \"pool ntp org\"", "host name or IPv4"]),
    ({"ntp": {"host": "300.1.1.1"}}, ["ntp.host"]),
    ({"ntp": {"host": "-bad.example"}}, ["ntp.host"]),
    ({"ntp": "pool.ntp.org"}, ["ntp = \"pool.ntp.org\"", "object"]),
    ({"wifi": {"ifconfig": ["192.168.1.50"]}}, ["wifi.ifconfig", "four IPv4", "DHCP"]),
    ({"wifi": {"ifconfig": ["192.168.1.50", "255.255.255.0", "192.168.1.1", "192.168.1.256"]}}, ["wifi.ifconfig"]),
    ({"wifi": {"ifconfig": [1, 2, 3, 4]}}, ["wifi.ifconfig"]),
    ({"wifi": {"ifconfig": "dhcp"}}, ["wifi.ifconfig", "list"]),
    ({"transports": ["http"], "http": {"target": "receiver"}}, ["http.url", "receiver"]),
    ({"transports": ["http"], "http": {"target": "receiver", "url": "http://192.0.2.5:8080"}},
     ["http.api_key", "receiver"]),
    ({"http": {"target": "influx"}}, ["http.target", "ha, flask, receiver"]),
])
def test_new_keys_name_key_value_and_expectation(over, words):
    msg = error_of(merged(**over))
    for w in words:
        assert w in msg, msg


# --- setup mode never dies; boot cleans interrupted writes ---------------------

NODE = {"wifi": {"ssid": "home", "password": "secret123", "timeout_s": 1, "retry_s": 60},
        "mqtt": {"host": "127.0.0.1"}, "webrepl": {"password": "s3cret"}}


def setup_mode(monkeypatch, tmp_path, data, fix_at_s=1200, fix=None, patch=None):
    """setupmode.run() for a bad config.json (data, bytes), fixed after
    fix_at_s (written over WebREPL): -> (console lines, seconds it took)."""
    from upynode import setupmode, startup
    import time
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.json").write_bytes(data)
    try:
        config.load()
    except config.ConfigError as e:
        startup.fail(startup.CONFIG, e)
    monkeypatch.setattr(startup, "failed", startup.failed)
    monkeypatch.setattr(startup, "reason", startup.reason)
    t = [0]
    sleep = time.sleep

    def sleep_and_fix(s):
        sleep(s)
        t[0] += s
        if t[0] >= fix_at_s and fix_at_s >= 0:
            (tmp_path / "config.json").write_text(json.dumps(fix or NODE))
    monkeypatch.setattr(time, "sleep", sleep_and_fix)
    import gc
    monkeypatch.setattr(gc, "collect", lambda: 0)  # ~60 ms a call in pytest's large CPython heap
    if patch:
        patch()
    lines = []
    with pytest.raises(SystemExit):  # machine.reset() once the config is valid
        setupmode.run(lines.append)
    return lines, t[0]


def test_setup_mode_outlives_a_latin1_config_and_restarts_once_it_is_fixed(world, monkeypatch, tmp_path):
    bad = json.dumps(merged(wifi={"password": "caf\u00e9"}), ensure_ascii=False).encode("latin-1")
    lines, s = setup_mode(monkeypatch, tmp_path, bad)
    assert s >= 1200 and lines[-1] == "setup: config.json is valid now: restarting"
    assert "config.json is not UTF-8 text (byte 0xe9 at offset %d)" % bad.index(b"\xe9") in lines[0]


@pytest.mark.parametrize("kb", [6, 64])
def test_setup_mode_outlives_an_oversized_config(world, monkeypatch, tmp_path, kb):
    bad = (json.dumps(merged(interval_s="often")) + " " * (kb * 1024)).encode()
    lines, s = setup_mode(monkeypatch, tmp_path, bad, fix_at_s=300)
    assert lines[0].startswith("setup mode: config: config.json is %d bytes, over the 4096" % len(bad))
    assert lines[-1] == "setup: config.json is valid now: restarting"


def test_setup_mode_logs_a_memory_error_and_keeps_waiting(world, monkeypatch, tmp_path):
    # The file reread every 5 s ran the heap out: whatever a poll raises,
    # setup mode says so and polls again.
    import builtins
    real_open = builtins.open
    fails = [3]

    def starved_open(p, *a, **k):
        if p == "config.json" and fails[0]:
            fails[0] -= 1
            raise MemoryError("memory allocation failed, allocating 6144 bytes")
        return real_open(p, *a, **k)
    lines, s = setup_mode(monkeypatch, tmp_path, b"{", fix_at_s=0,
                          patch=lambda: monkeypatch.setattr(builtins, "open", starved_open))
    assert lines.count("setup mode: MemoryError: memory allocation failed, allocating 6144 bytes") >= 2
    assert lines[-1] == "setup: config.json is valid now: restarting" and fails[0] == 0


def test_setup_mode_sees_a_fix_that_keeps_the_size(world, monkeypatch, tmp_path):
    # Compared by content, not size: "often" -> "60   " is the same length.
    bad = json.dumps(merged(interval_s="often")).encode()
    good = bad.replace(b'"often"', b'60     ')
    assert len(good) == len(bad)
    from upynode import setupmode
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.json").write_bytes(bad)
    before = setupmode._stamp()
    (tmp_path / "config.json").write_bytes(good)
    assert setupmode._stamp() != before


def test_boot_removes_interrupted_writes_and_keeps_the_files(monkeypatch, tmp_path):
    from upynode import startup
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(NODE))
    (tmp_path / "config.json.tmp").write_text('{"wifi": {"ss')  # `config put` cut mid-upload
    (tmp_path / "webrepl_cfg.py").write_text("PASS = 'old1'\n")
    (tmp_path / "webrepl_cfg.py.tmp").write_text("PASS = 'new")
    (tmp_path / "boot.n.tmp").write_text("")
    lines = []
    startup.clean(lines.append)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "webrepl_cfg.py"]
    assert config.load()["wifi"]["ssid"] == "home"
    assert sorted(lines) == ["boot: removed %s (an interrupted write)" % n
                             for n in ("boot.n.tmp", "config.json.tmp", "webrepl_cfg.py.tmp")]


def test_boot_restores_a_config_whose_rename_was_cut(monkeypatch, tmp_path):
    # On FAT, save() removes the old file before the rename: the .tmp is
    # then the only config there is.
    from upynode import startup
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.json.tmp").write_text(json.dumps(NODE))
    lines = []
    startup.clean(lines.append)
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]
    assert config.load()["wifi"]["ssid"] == "home" and lines == ["boot: config.json restored from config.json.tmp"]


def test_startup_run_cleans_before_it_reads_the_config(world, monkeypatch, tmp_path):
    from upynode import startup
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(startup, "cfg", None)
    monkeypatch.setattr(startup, "failed", None)
    monkeypatch.setattr(startup, "reason", None)
    world["aps"] = {"home": {"password": "secret123"}}
    (tmp_path / "config.json.tmp").write_text(json.dumps(NODE))
    lines = []
    with pytest.raises(SystemExit):  # checked, saved, restarting
        startup.check(lines.append)
    assert not (tmp_path / "config.json.tmp").exists()
    c = startup.run(startup.check(lines.append), lines.append)
    assert c and c["wifi"]["ssid"] == "home" and c["node_id"].startswith("esp8266_")
    assert lines[:2] == ["boot: config.json restored from config.json.tmp",
                         "config: config.json checked; restarting to run it in a fresh heap"]


def test_a_checked_config_is_read_without_config_until_the_file_or_the_firmware_changes(world, monkeypatch,
                                                                                       tmp_path):
    import shutil
    import sys
    import upynode
    from upynode import startup
    pkg = tmp_path / "pkg"  # the firmware's files as on the board's filesystem
    shutil.copytree(upynode.__path__[0], pkg)
    monkeypatch.setattr(upynode, "__path__", [str(pkg)])
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(NODE))
    with pytest.raises(SystemExit):
        startup.check(print)
    sys.modules.pop("upynode.config", None)
    c = startup.check(print)
    assert c["wifi"]["ssid"] == "home" and c["interval_s"] == config.DEFAULTS["interval_s"]
    assert "upynode.config" not in sys.modules  # config was not needed
    (tmp_path / "config.json").write_text(json.dumps(dict(NODE, interval_s=7)))
    with pytest.raises(SystemExit):  # a changed file is checked again
        startup.check(print)
    assert startup.check(print)["interval_s"] == 7
    with open(pkg / "sensor_adc.py", "a") as f:  # a firmware update: a driver's defaults may have changed
        f.write("\n# v2\n")
    with pytest.raises(SystemExit):
        startup.check(print)
    assert startup.check(print)["interval_s"] == 7
    (tmp_path / "config.json").write_text("{")  # a broken file is never hidden by the old check
    monkeypatch.setattr(startup, "failed", None)
    assert startup.check(print) is None and startup.failed == startup.CONFIG


def test_a_cut_while_saving_the_webrepl_password_keeps_the_old_one(world, monkeypatch, tmp_path):
    # Written in place, a power cut (here: a full filesystem) mid-write
    # left webrepl_cfg.py empty and the node without its WebREPL password.
    import builtins
    from upynode import startup
    monkeypatch.chdir(tmp_path)
    (tmp_path / "webrepl_cfg.py").write_text("PASS = 'old1'\n")
    real_open = builtins.open

    class Cut:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            raise OSError(28, "ENOSPC")

    def cut_open(p, mode="r", *a, **k):
        f = real_open(p, mode, *a, **k)
        return Cut(f) if str(p).startswith("webrepl_cfg.py") and "w" in mode else f
    monkeypatch.setattr(builtins, "open", cut_open)
    lines = []
    startup.start_webrepl({"webrepl": {"password": "new22"}}, lines.append)
    assert (tmp_path / "webrepl_cfg.py").read_text() == "PASS = 'old1'\n"
    assert any("could not save webrepl_cfg.py" in ln for ln in lines)


# --- the host tool: the same checks, one line each, never a traceback ------------

@pytest.mark.parametrize("name, data, words", [
    ("latin1.json", json.dumps(merged(wifi={"password": "caf\u00e9"}), ensure_ascii=False).encode("latin-1"),
     ["not UTF-8 text (byte 0xe9 at offset"]),
    ("deep.json", ('{"sensors": ' + "[" * 1500 + "]" * 1500 + "}").encode(), ["nested more than 5 levels"]),
    ("deeper.json", ('{"sensors": ' + "[" * 10000 + "]" * 10000 + "}").encode(), ["20013 bytes, over the 4096"]),
    ("type_obj.json", json.dumps(merged(sensors=[{"type": {}}])).encode(), ["sensors[0].type = {}"]),
    ("type_list.json", json.dumps(merged(sensors=[{"type": []}])).encode(), ["sensors[0].type = []"]),
    ("inf.json", b'{"sensors": [{"type": "adc", "max": 1e999}]}', ["sensors[0].max: expected a finite number"]),
    ("webrepl.json", json.dumps(merged(webrepl="wrPW9x")).encode(), ["webrepl = ***"]),
])
def test_config_check_and_put_give_one_line_errors(tmp_path, name, data, words):
    from helpers import cli, one_line_error
    f = tmp_path / name
    f.write_bytes(data)
    err = one_line_error(cli("config", "check", f), name + " is not valid, the node would go to setup mode", *words)
    assert "wrPW9x" not in err
    # put checks before it looks for the board
    one_line_error(cli("config", "put", f, "--port", tmp_path / "no-such-port"), "nothing was written", *words)


def test_config_check_accepts_the_example():
    from helpers import cli
    from upynode_cli.project import REPO
    r = cli("config", "check", REPO / "config.example.json")
    assert r.returncode == 0 and "config.example.json is valid" in r.stderr, r.stderr


def test_setup_mode_and_boot_name_the_file_as_config_does():
    # They do not keep config loaded (its code is the largest at boot), so
    # they carry its file name and size limit themselves.
    from upynode import setupmode, startup
    assert (setupmode.PATH, setupmode.MAX_BYTES, startup.CONFIG_JSON) == (config.PATH, config.MAX_BYTES, config.PATH)


@pytest.mark.parametrize("over, words", [
    # issue 10 defect 1: HA would show every sensor twice (REST and discovery)
    ({"transports": ["mqtt", "http"], "http": {"target": "ha"},
      "homeassistant": {"url": "http://127.0.0.1:8123", "token": "t"}}, ["http.target", "twice"]),
    # issue 10 defect 7: a switch nothing can reach
    ({"transports": ["http"], "http": {"target": "ha"}, "led": {"mode": "remote"},
      "homeassistant": {"url": "http://127.0.0.1:8123", "token": "t"}}, ["led.mode", "MQTT"]),
])
def test_home_assistant_combinations_that_cannot_work_are_refused(over, words):
    import json as _json
    from upynode import config as C
    base = {"wifi": {"ssid": "x"}, "mqtt": {"host": "127.0.0.1"}, "webrepl": {"password": "s3cret"}}
    base.update(over)
    with pytest.raises(C.ConfigError) as e:
        C.parse(_json.dumps(base))
    for w in words:
        assert w in str(e.value)
    base["mqtt"] = {"host": "127.0.0.1", "discovery": False}  # the REST posts alone: fine
    if "led" not in over:
        C.parse(_json.dumps(base))


@pytest.mark.parametrize("sensor", [{"type": "adc", "quantity": "heap"}, {"type": "adc", "quantity": "si", "prefix": "rs"},
                                    {"type": "adc", "quantity": "up"}])
def test_a_quantity_named_like_a_key_of_the_state_message_is_refused(sensor):
    # it would overwrite the node's own value and share an id with an HA diagnostic
    d = {"wifi": {"ssid": "x"}, "mqtt": {"host": "127.0.0.1"}, "webrepl": {"password": "s3cret"}, "sensors": [sensor]}
    with pytest.raises(config.ConfigError) as e:
        config.parse(json.dumps(d))
    assert str(e.value).startswith("sensors[0]: quantity") and "a name the node's state message has" in str(e.value)


def test_startup_interns_every_key_of_the_config_it_reads_back():
    # startup._keys lists config.DEFAULTS' keys, so that the checked config
    # read from config.ok shares interned names instead of a string per key
    from upynode import startup
    keys = set()

    def walk(d):
        for k, v in d.items():
            keys.add(k)
            if isinstance(v, dict):
                walk(v)
    walk(config.DEFAULTS)
    assert keys <= set(startup._keys.__code__.co_names)


def test_a_quantity_name_the_receiver_would_refuse_is_refused_here():
    msg = error_of(merged(sensors=[{"type": "mcp9808", "prefix": "p" * 31}]))
    assert msg.startswith("sensors[0]: quantity \"%stemperature\"" % ("p" * 31)) and "at most 32" in msg, msg
    msg = error_of(merged(sensors=[{"type": "mcp9808", "prefix": "1_"}]))
    assert "a letter first" in msg, msg
    parse(merged(sensors=[{"type": "mcp9808", "prefix": "p" * 21}]))  # 32 characters: taken


def test_a_queue_too_small_for_the_config_s_largest_reading_is_refused():
    three = [{"type": "adc"}, {"type": "mcp9808"}, {"type": "dht22", "prefix": "room_"}]
    msg = error_of(merged(sensors=three, backlog={"max_kb": 1}))
    assert msg.startswith("backlog.max_kb = 1: expected at least ") and "quarter" in msg, msg
    least = int(msg.split("at least ")[1].split(":")[0])
    parse(merged(sensors=three, backlog={"max_kb": least}))
    parse(merged(sensors=[{"type": "adc"}], backlog={"max_kb": 1}))  # one sensor fits the smallest queue
