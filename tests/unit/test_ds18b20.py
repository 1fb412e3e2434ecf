"""The DS18B20 driver (sensor_ds18b20 + read_ds18b20) against the fake
1-Wire bus: what a user configures, sees in readings and in Home Assistant,
and how long the loop is held up by the 750 ms conversion."""
import json

import pytest

from upynode import assemble, config, discovery, sensors

ROM = "28ff6a2b3c4d5eb3"      # the world's default sensor
OTHER = "28aa0102030405a7"
BASE = {"wifi": {"ssid": "x"}, "mqtt": {"host": "h"}, "webrepl": {"password": "s3cret"}}


def parse(*entries, **over):
    d = dict(BASE, sensors=list(entries))
    d.update(over)
    return config.parse(json.dumps(d))


def load(*entries):
    return assemble.load_sensors(parse(*entries)["sensors"], log=lambda m: None)


def error_of(*entries, **over):
    with pytest.raises(config.ConfigError) as e:
        parse(*entries, **over)
    return str(e.value)


def test_defaults_and_the_published_quantity():
    (c,) = parse({"type": "ds18b20"})["sensors"]
    assert (c["pin"], c["rom"], c["prefix"]) == (12, "", "")


def test_reads_the_world_in_sixteenths_of_a_degree(world):
    world["temperature"] = 21.53
    (_, s), = load({"type": "ds18b20"})
    assert s.read() == (("temperature", 21.5),)
    world["temperature"] = -10.0625
    s.read()  # converted at the end of the previous read: one cycle behind
    assert s.read() == (("temperature", -10.0625),)


def test_the_loop_waits_for_the_first_conversion_only(world, clock):
    (_, s), = load({"type": "ds18b20"})
    t0 = clock.ms
    s.read()                      # the conversion started at load: wait it out
    assert clock.ms - t0 <= 750
    clock.ms += 60000             # the node's interval passes
    t1 = clock.ms
    assert s.read() == (("temperature", 21.5),)
    assert clock.ms == t1         # the next conversion ran between cycles: no wait


def test_never_reads_before_the_conversion_ends(world, clock):
    # The fake returns the power-on 85.0 until a conversion has finished.
    world["temperature"] = 19.0
    (_, s), = load({"type": "ds18b20"})
    assert dict(s.read())["temperature"] == 19.0


def test_two_sensors_on_one_pin_by_rom_code(world):
    world["ds18b20"] = {ROM: 4.0, OTHER: 22.25}
    sens = load({"type": "ds18b20", "rom": ROM, "prefix": "fridge_"},
                {"type": "ds18b20", "rom": OTHER, "prefix": "room_"})
    values, errors = sensors.read_all(sens, log=lambda m: None)
    assert values == {"fridge_temperature": 4.0, "room_temperature": 22.25} and not errors


def test_two_sensors_and_no_rom_names_the_codes_to_choose_from(world):
    world["ds18b20"] = {ROM: 4.0, OTHER: 22.25}
    sens = load({"type": "ds18b20"})
    _, errors = sensors.read_all(sens, log=lambda m: None)
    assert ROM in errors["ds18b20"] and OTHER in errors["ds18b20"] and "rom" in errors["ds18b20"]


def test_absent_sensor_is_a_reading_error_and_recovers(world):
    world["faults"] = {"ds18b20": "absent"}
    sens = load({"type": "ds18b20"}, {"type": "adc"})
    values, errors = sensors.read_all(sens, log=lambda m: None)
    assert errors == {"ds18b20": "no device"} and "light" in values
    world["faults"] = {}
    values, errors = sensors.read_all(sens, log=lambda m: None)
    assert values["temperature"] == 21.5 and not errors


def test_a_wrong_rom_code_is_no_device(world):
    sens = load({"type": "ds18b20", "rom": OTHER})
    assert sensors.read_all(sens, log=lambda m: None)[1] == {"ds18b20": "no device"}


def test_crc_errors_are_reported(world):
    world["faults"] = {"ds18b20": "crc"}
    sens = load({"type": "ds18b20"})
    assert "CRC" in sensors.read_all(sens, log=lambda m: None)[1]["ds18b20"]


@pytest.mark.parametrize("entry, words", [
    ({"type": "ds18b20", "pin": 15}, ["sensors[0].pin", "15", "boot"]),
    ({"type": "ds18b20", "pin": 3}, ["sensors[0].pin", "3", "GPIO"]),
    ({"type": "ds18b20", "rom": "28-ff6a"}, ["sensors[0].rom", '"28-ff6a"', "16", "hex"]),
    ({"type": "ds18b20", "rom": "10ff6a2b3c4d5eb3"}, ["sensors[0].rom", "starting with 28"]),
    ({"type": "ds18b20", "rom": 40}, ["sensors[0].rom", "40", "string"]),
    ({"type": "ds18b20", "prefix": "a b"}, ["sensors[0].prefix", "a b"]),
    ({"type": "ds18b20", "resolution": 9}, ["sensors[0].resolution", "unknown key", "rom"]),
])
def test_config_errors_name_key_and_value(entry, words):
    msg = error_of(entry)
    for w in words:
        assert w in msg, msg


def test_pin_sharing_only_with_other_1wire_sensors():
    c = parse({"type": "ds18b20", "rom": ROM}, {"type": "ds18b20", "rom": OTHER, "prefix": "b_"})
    assert [s["pin"] for s in c["sensors"]] == [12, 12]
    msg = error_of({"type": "ds18b20"}, {"type": "dht22", "pin": 12, "prefix": "b_"})
    assert "sensors[1].pin" in msg and "GPIO12" in msg and "sensors[0].pin" in msg
    msg = error_of({"type": "mcp9808"}, {"type": "ds18b20", "pin": 5, "prefix": "b_"})
    assert "sensors[1].pin" in msg and "sensors[0].scl" in msg


def test_clash_with_another_temperature_needs_a_prefix():
    msg = error_of({"type": "mcp9808"}, {"type": "ds18b20"})
    assert "sensors[1]" in msg and "temperature" in msg and "prefix" in msg


def test_threshold_led_can_follow_it():
    c = parse({"type": "ds18b20", "prefix": "tank_"},
              led={"mode": "threshold", "quantity": "tank_temperature", "threshold": 60})
    assert c["led"]["quantity"] == "tank_temperature"


def test_home_assistant_sees_a_temperature_in_celsius(world):
    sens = load({"type": "ds18b20", "prefix": "tank_"})
    units = dict(assemble.sensor_units(sens))
    assert units == {"tank_temperature": "°C"}
    (t, p), = [x for x in discovery.configs("n1", units, dict(config.DEFAULTS["mqtt"]), False,
                                             assemble.sensor_about(sens))]
    assert t == "homeassistant/sensor/n1/tank_temperature/config"
    e = json.loads("".join(discovery.flat(p)))
    assert (e["unit_of_meas"], e["dev_cla"], e["sug_dsp_prc"]) == ("°C", "temperature", 1)
