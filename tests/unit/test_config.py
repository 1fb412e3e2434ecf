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
    (merged(mqtt={"base_topic": "home/#"}), ["mqtt.base_topic", "home/#"]),
    (merged(mqtt={"keepalive": 5}), ["mqtt.keepalive", "5", "at least 10"]),
    (merged(mqtt={"expire_after": 60}, interval_s=60), ["mqtt.expire_after", "60", "unavailable"]),
    (merged(interval_s=1e999), ["interval_s", "finite number"]),
    (merged(http={"fields": {"temperature": 1e999}}), ["http.fields.temperature", "finite number"]),
    (merged(webrepl={"password": ""}), ["webrepl.password", "4 to 9", "guards"]),
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
