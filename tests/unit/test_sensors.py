"""The drivers against the fake hardware (CPython)."""

import pytest

from upynode import assemble, sensors
from upynode.read_mcp9808 import decode
import machine


def load(*entries):
    import json
    from upynode import config
    cfg = config.parse(json.dumps({"wifi": {"ssid": "x"}, "mqtt": {"host": "h"},
                                  "webrepl": {"password": "s3cret"}, "sensors": list(entries)}))
    return assemble.load_sensors(cfg["sensors"], log=lambda m: None)


@pytest.mark.parametrize("t", [21.5, 0.0, 0.0625, -0.0625, -5.25, -40.0, 99.9375, 124.75])
def test_mcp9808_reads_the_world_temperature_including_negatives(world, t):
    world["temperature"] = t
    (_, s), = load({"type": "mcp9808"})
    assert s.read() == (("temperature", t),)


def test_mcp9808_register_model_sets_alert_flags_that_the_driver_masks(world):
    # Tcrit/Tupper/Tlower default to 0 degC, so the top bits are set in use.
    world["temperature"] = 23.0
    raw = machine.SoftI2C(scl=machine.Pin(5), sda=machine.Pin(4)).readfrom_mem(0x18, 5, 2)
    assert raw[0] & 0xE0 == 0xC0
    assert decode(raw[0], raw[1]) == 23.0
    world["temperature"] = -10.5
    raw = machine.SoftI2C(scl=machine.Pin(5), sda=machine.Pin(4)).readfrom_mem(0x18, 5, 2)
    assert raw[0] & 0x10 and raw[0] & 0x20
    assert decode(raw[0], raw[1]) == -10.5


def test_mcp9808_absent_is_a_sensor_error_not_a_crash(world):
    world["faults"] = {"mcp9808": "absent"}
    sens = load({"type": "mcp9808"}, {"type": "adc"})
    values, errors = sensors.read_all(sens, log=lambda m: None)
    assert errors == {"mcp9808": "no device"}
    assert "light" in values and "temperature" not in values


def test_adc_gives_raw_and_scaled(world):
    world["light"] = 256
    (_, s), = load({"type": "adc", "min": 0, "max": 100})
    assert dict(s.read()) == {"light": 25.0, "light_raw": 256}
    world["light"] = 1024
    assert dict(s.read())["light"] == 100.0


def test_adc_scale_and_name_are_configurable(world):
    world["light"] = 512
    (_, s), = load({"type": "adc", "quantity": "moisture", "unit": "%", "min": 100, "max": 0})
    assert dict(s.read()) == {"moisture": 50.0, "moisture_raw": 512}


@pytest.mark.parametrize("kind, gap", [("dht11", 1.0), ("dht22", 2.0)])
def test_dht_is_measured_at_most_once_per_gap_and_never_makes_the_node_wait(world, clock, kind, gap):
    world.update(temperature=22.34, humidity=51.26)
    (_, s), = load({"type": kind})
    t0 = clock.ms
    first = dict(s.read())   # the part needs its gap after power-up: the one wait
    assert clock.ms - t0 == gap * 1000
    world.update(temperature=30.0)
    t1 = clock.ms
    second = dict(s.read())  # too soon for the part: its latest measurement, no wait
    assert clock.ms == t1
    if kind == "dht11":
        assert first == second == {"temperature": 22, "humidity": 51}
    else:
        assert first == second == {"temperature": 22.3, "humidity": 51.3}
    clock.sleep(gap)
    assert dict(s.read())["temperature"] == 30  # a gap later: measured again


def test_dht_timeout_is_retried_then_succeeds(world):
    world["faults"] = {"dht": "flaky"}  # every other read times out
    (_, s), = load({"type": "dht11", "retries": 1})
    s.last -= 1000
    assert dict(s.read())["temperature"] == 21  # 21.5: the driver returns the integral byte


def test_dht_timeout_is_reported_after_retries_and_others_go_on(world):
    world["faults"] = {"dht": "timeout"}
    sens = load({"type": "dht11", "retries": 1}, {"type": "adc"})
    sens[0][1].last -= 1000
    values, errors = sensors.read_all(sens, log=lambda m: None)
    assert errors == {"dht11": "timeout"}
    assert values["light_raw"] == 512


def test_a_sensor_that_cannot_start_is_reported_every_cycle(world, monkeypatch):
    import upynode.read_adc as adc
    monkeypatch.setattr(adc.Sensor, "__init__", lambda self, c, units: (_ for _ in ()).throw(OSError(5)))
    sens = load({"type": "adc"}, {"type": "mcp9808"})
    values, errors = sensors.read_all(sens, log=lambda m: None)
    assert errors == {"adc": "not started"} and "temperature" in values


def test_only_configured_drivers_are_imported(world):
    import subprocess
    import sys
    import os
    from upynode_cli.project import LIB
    from upynode_vboard import FAKES
    code = ("import sys\n"
            "from upynode import assemble\n"
            "assemble.load_sensors([{'type': 'adc', 'quantity': 'light', 'unit': '%', 'min': 0, 'max': 100, 'prefix': ''}])\n"
            "print(sorted(m for m in sys.modules if m.startswith(('upynode.sensor_', 'upynode.read_', 'upynode.drivers')) or m == 'dht'))")
    env = dict(os.environ, UPYNODE_VBOARD="", PYTHONPATH=os.pathsep.join([str(LIB), FAKES]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    # and the loop keeps the reader only: the declarations (sensor_adc) are released
    assert out.stdout.strip() == "['upynode.read_adc']", out.stderr


def test_units_and_about_follow_config_order_and_prefixes(world):
    sens = load({"type": "dht22", "prefix": "in_"}, {"type": "adc", "quantity": "soil", "unit": "%"},
                {"type": "mcp9808"})
    assert assemble.sensor_units(sens) == [("in_temperature", "°C"), ("in_humidity", "%"), ("soil", "%"),
                                   ("soil_raw", "raw"), ("temperature", "°C")]
    assert assemble.sensor_about(sens) == {"in_temperature": ("temperature", 1), "in_humidity": ("humidity", 1),
                                   "soil": (None, 1), "soil_raw": (None, 0), "temperature": ("temperature", 2)}


def test_a_sensor_not_started_has_no_units(world, monkeypatch):
    import upynode.read_mcp9808 as m
    monkeypatch.setattr(m.Sensor, "__init__", lambda self, c, units: (_ for _ in ()).throw(OSError(19)))
    logs = []
    sens = load({"type": "mcp9808"}, {"type": "adc"})
    assert assemble.sensor_units(sens) == [("light", "%"), ("light_raw", "raw")]
    assert sensors.read_all(sens, log=logs.append)[1] == {"mcp9808": "not started"}


@pytest.mark.parametrize("kind", [None, "", "bmp280", "dht", "../sensor_adc", "sensors"])
def test_driver_knows_only_declared_types(kind):
    from upynode import drivers
    assert drivers.driver(kind) is None


def test_readings_are_written_without_float_noise():
    # issue 10 defect 5: MicroPython prints round(68.359375, 1) as
    # 68.40000000000001; the drivers round to their resolution (at most
    # 1/16 degC: 4 decimals) and the JSON says what they meant.
    import json
    noisy = 68.40000000000001
    text = sensors.dumps({"light": noisy, "t": 21.0625, "h": 45.0, "raw": 700, "err": {"dht22": "timeout"}})
    assert json.loads(text) == {"light": 68.4, "t": 21.0625, "h": 45.0, "raw": 700, "err": {"dht22": "timeout"}}
    assert '"light":68.4,' in text + "," and '"h":45.0' in text
    assert sensors.num(noisy) == "68.4" and sensors.num(-0.5) == "-0.5" and sensors.num(3) == "3"
    assert sensors.num(float("nan")) == "null"
