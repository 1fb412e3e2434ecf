"""The node over MQTT as a Home Assistant user sees it: the entities that
discovery makes, their device, the LED switch, availability after the node
dies, and the entities after Home Assistant restarts."""
import json

from conftest import numeric

QUANTITIES = ("temperature", "light", "light_raw")


# The node's diagnostics (entity_category diagnostic): entity id suffix ->
# (name, unit, device class)
DIAGNOSTICS = {"wifi_signal": ("WiFi signal", "dBm", "signal_strength"),
               "free_memory": ("Free memory", "B", "data_size"),
               "uptime": ("Uptime", "s", "duration"),
               "queued_readings": ("Queued readings", None, None),
               "last_reset_cause": ("Last reset cause", None, None)}


def test_entities_appear_with_names_classes_units_diagnostics_and_one_device(ha, ha_node):
    node, vb = ha_node(world={"temperature": 22.75, "light": 512})
    with vb:
        temp = ha.wait_state("sensor.%s_temperature" % node, numeric)
        light = ha.wait_state("sensor.%s_light" % node, numeric)
        raw = ha.wait_state("sensor.%s_light_raw" % node, numeric)
        diag = {k: ha.wait_state("sensor.%s_%s" % (node, k), lambda s: s and s["state"] != "unknown")
                for k in DIAGNOSTICS}
    assert temp["state"] == "22.75"
    # HA names an entity of a device "<device name> <entity name>": the
    # node names its entities only (readable, sentence case)
    assert temp["attributes"] == {"friendly_name": node + " Temperature", "device_class": "temperature",
                                  "unit_of_measurement": "°C", "state_class": "measurement"}
    # light in % of the ADC's scale: no HA device class fits it
    assert light["state"] == "50.0"
    assert light["attributes"] == {"friendly_name": node + " Light", "unit_of_measurement": "%",
                                   "state_class": "measurement"}
    assert raw["state"] == "512" and raw["attributes"]["friendly_name"] == node + " Light raw"
    assert "unit_of_measurement" not in raw["attributes"] and "device_class" not in raw["attributes"]

    # What the state message and the retained info message say, as HA shows it
    assert -100 < int(diag["wifi_signal"]["state"]) < 0
    assert diag["wifi_signal"]["attributes"]["ip"] == "127.0.0.1"  # the virtual board's address
    assert int(diag["free_memory"]["state"]) > 1000
    assert int(diag["uptime"]["state"]) >= 0
    assert diag["queued_readings"]["state"] == "0"
    assert diag["last_reset_cause"]["state"] == "power on"
    for k, (name, unit, cls) in DIAGNOSTICS.items():
        a = diag[k]["attributes"]
        assert (a["friendly_name"], a.get("unit_of_measurement"), a.get("device_class")) == (
            node + " " + name, unit, cls), a

    ents = {e["entity_id"]: e for e in ha.entities(node)}
    assert sorted(ents) == sorted(["sensor.%s_%s" % (node, q) for q in QUANTITIES] +
                                  ["sensor.%s_%s" % (node, k) for k in DIAGNOSTICS])
    assert {e["platform"] for e in ents.values()} == {"mqtt"}
    assert {e["has_entity_name"] for e in ents.values()} == {True}
    assert ents["sensor.%s_temperature" % node]["original_name"] == "Temperature"
    category = {k.split(".")[1][len(node) + 1:] for k, e in ents.items() if e["entity_category"] == "diagnostic"}
    assert category == set(DIAGNOSTICS) | {"light_raw"}
    # The display precision the drivers declare: the MCP9808's 1/16 degC
    # steps as hundredths, the ADC's percent in tenths, raw counts whole.
    precision = {q: ents["sensor.%s_%s" % (node, q)]["options"]["sensor"]["suggested_display_precision"]
                 for q in QUANTITIES}
    assert precision == {"temperature": 2, "light": 1, "light_raw": 0}

    devices = ha.devices(node)
    assert len(devices) == 1, devices
    dev = devices[0]
    assert {e["device_id"] for e in ents.values()} == {dev["id"]}
    assert (dev["name"], dev["manufacturer"], dev["model"]) == (node, "upynode", "ESP8266")
    assert dev["sw_version"] and dev["configuration_url"] is None
    # Who announced them: the origin block, as HA keeps it with the device's MQTT info
    info = ha.ws("mqtt/device/debug_info", device_id=dev["id"])
    origins = {json.dumps(e["discovery_data"]["payload"].get("origin"), sort_keys=True) for e in info["entities"]}
    assert origins == {json.dumps({"name": "upynode", "sw_version": dev["sw_version"]}, sort_keys=True)}, origins
    # The user names the device: its entities follow, their ids stay
    ha.ws("config/device_registry/update", device_id=dev["id"], name_by_user="Kitchen")
    ha.wait_state("sensor.%s_temperature" % node,
                  lambda s: s and s["attributes"]["friendly_name"] == "Kitchen Temperature", timeout=5)
    assert ha.state("sensor.%s_wifi_signal" % node)["attributes"]["friendly_name"] == "Kitchen WiFi signal"
    assert ha.problems_about(node, QUANTITIES + tuple(DIAGNOSTICS)) == []


def test_the_reset_causes_as_home_assistant_names_them(ha):
    # The reset entity's template (discovery._RESET) on what
    # machine.reset_cause() gives on the ESP8266, rendered by HA itself
    from upynode import discovery
    tpl = discovery._RESET
    got = [ha.api_text("POST", "/api/template", {"template": tpl, "variables": {"value_json": {"reset": r}}})
           for r in range(8)]
    assert got == ["power on", "hardware watchdog", "exception", "watchdog", "software reset",
                   "deep sleep wake", "reset pin", "7"]
    assert ha.problems_about("reset", ("reset",)) == []


def test_the_led_switch_round_trip(ha, ha_node):
    node, vb = ha_node(interval_s=30, led={"mode": "remote"})
    switch = "switch.%s_led" % node
    with vb:
        st = ha.wait_state(switch, lambda s: s and s["state"] == "off")
        assert st["attributes"]["friendly_name"] == node + " LED"
        assert vb.state("gpio2") == 1  # active-low: dark
        # Taken between readings (every 30 s here), not at the next one.
        ha.call("switch", "turn_on", entity_id=switch)
        ha.wait_state(switch, lambda s: s["state"] == "on", timeout=10)
        assert vb.state("gpio2") == 0  # lit
        ha.call("switch", "turn_off", entity_id=switch)
        ha.wait_state(switch, lambda s: s["state"] == "off", timeout=10)
        assert vb.state("gpio2") == 1
    assert ha.problems_about(node, ("led",)) == []


def test_entities_are_unavailable_once_the_node_dies(ha, ha_node):
    node, vb = ha_node(led={"mode": "remote"})
    entities = ["sensor.%s_%s" % (node, q) for q in QUANTITIES] + ["switch.%s_led" % node,
                                                                  "sensor.%s_last_reset_cause" % node]
    with vb:
        for e in entities:
            ha.wait_state(e, lambda s: s and s["state"] not in ("unavailable", "unknown"))
    # Killed (power cut): no DISCONNECT, so the broker publishes its will.
    for e in entities:
        ha.wait_state(e, lambda s: s["state"] == "unavailable", timeout=15)
    assert ha.problems_about(node, QUANTITIES) == []


def test_the_node_announces_again_when_home_assistant_restarts(ha, ha_broker, ha_node):
    # HA restarts together with a broker that keeps nothing (no persistence):
    # the entities only come back because the node announces them again
    # when HA says "online" on homeassistant/status.
    node, vb = ha_node(world={"temperature": 19.5})
    temp = "sensor.%s_temperature" % node
    with vb:
        ha.wait_state(temp, numeric)
        ha.stop()
        start = len(vb.lines)  # before the broker goes: the node may be back before the next line
        ha_broker.stop()
        ha_broker.start()  # same port, no retained discovery
        vb.wait_for("mqtt: connected", start=start)
        vb.world(temperature=20.25)
        ha.start()
        ha.mark()
        # the node announced less than 30 s ago: HA's "online" is answered
        # when they are up (at most one announcement per 30 s, mqtt._AGAIN_MS)
        st = ha.wait_state(temp, lambda s: s and s["state"] == "20.25", timeout=50)
        assert st["attributes"]["device_class"] == "temperature" and "restored" not in st["attributes"]
        for q in ("light", "light_raw"):
            ha.wait_state("sensor.%s_%s" % (node, q), numeric)
        # the node's info (retained once per connect): there for an HA
        # that started after it, though the state message says reset once
        ha.wait_state("sensor.%s_last_reset_cause" % node, lambda s: s and s["state"] == "power on")
        assert ha.state("sensor.%s_wifi_signal" % node)["attributes"]["ip"] == "127.0.0.1"
    # the same entities, not new ones beside the remembered
    assert sorted(e["entity_id"] for e in ha.entities(node)) == sorted(
        ["sensor.%s_%s" % (node, q) for q in QUANTITIES] + ["sensor.%s_%s" % (node, k) for k in DIAGNOSTICS])
    assert ha.problems_about(node, QUANTITIES) == []


def test_a_sensor_taken_out_of_the_config_leaves_home_assistant(ha, ha_node):
    node, vb = ha_node()
    with vb:
        ha.wait_state("sensor.%s_light" % node, numeric)
        ha.wait_state("sensor.%s_temperature" % node, numeric)
    vb.write_config(dict(vb.config, sensors=[{"type": "mcp9808"}]))  # the ADC removed
    with vb:
        for q in ("light", "light_raw"):
            ha.wait_state("sensor.%s_%s" % (node, q), lambda s: s is None)
        ha.wait_state("sensor.%s_temperature" % node, lambda s: s and numeric(s) and s["state"] == "21.5")
    assert sorted(e["entity_id"] for e in ha.entities(node)) == sorted(
        ["sensor.%s_temperature" % node] + ["sensor.%s_%s" % (node, k) for k in DIAGNOSTICS])
    assert len(ha.devices(node)) == 1
    # The first state messages without the ADC's quantities can reach HA
    # before it has removed their entities: their templates must not warn.
    assert ha.problems_about(node, QUANTITIES) == []
