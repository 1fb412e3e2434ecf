"""The node over HTTP to Home Assistant's REST API (http.target "ha"), and
the LED that follows an entity (led.mode "ha_state"), against the real HA:
what tests/vm used a stand-in of HA's REST API for (the bytes the node
sends are checked against a plain recording server in tests/vm)."""
import json
import re
import time

from conftest import numeric


def test_http_states_and_an_led_that_follows_an_entity(ha, ha_node):
    kitchen = "sensor.upynode_test_kitchen_%d" % time.monotonic_ns()
    ha.api("POST", "/api/states/" + kitchen, {"state": "18.5", "attributes": {"unit_of_measurement": "°C"}})
    node, vb = ha_node(transports=["http"], http={"target": "ha"}, world={"temperature": 22.75},
                       led={"mode": "ha_state", "entity_id": kitchen, "threshold": 20})
    with vb:
        temp = ha.wait_state("sensor.%s_temperature" % node, numeric)
        light = ha.wait_state("sensor.%s_light" % node, numeric)
        assert temp["state"] == "22.75"
        assert temp["attributes"] == {"friendly_name": node + " Temperature", "device_class": "temperature",
                                      "unit_of_measurement": "°C", "state_class": "measurement"}
        assert light["attributes"]["unit_of_measurement"] == "%" and "device_class" not in light["attributes"]
        assert vb.state("gpio2") == 1  # 18.5 < 20: dark (active-low)

        ha.api("POST", "/api/states/" + kitchen, {"state": "21", "attributes": {"unit_of_measurement": "°C"}})
        t_end = time.monotonic() + 15
        while vb.state("gpio2") != 0 and time.monotonic() < t_end:
            time.sleep(0.2)
        assert vb.state("gpio2") == 0, vb.output()  # 21 >= 20: lit

        ha.api("POST", "/api/states/" + kitchen, {"state": "unavailable"})
        start = len(vb.lines)
        vb.wait_for(re.escape(kitchen) + " is unavailable: keeping the LED on", start=start)
        assert vb.state("gpio2") == 0
    # Entities made by POST /api/states live in the state machine only:
    # none in the registry, so no device either.
    assert ha.entities(node) == [] and ha.devices(node) == []
    # one state per quantity, no duplicates
    assert sorted(e for e in ha.states() if node in e) == sorted(
        "sensor.%s_%s" % (node, q) for q in ("light", "light_raw", "temperature"))
    assert ha.problems_about(node, ("temperature", "light", "light_raw")) == []


def test_the_rest_target_and_the_state_reader_in_the_vm(ha, ha_vm):
    # The modules alone in the VM, against HA: a node id that is not an
    # entity id ("Rest-1..." -> rest_1...), states created then updated,
    # what HA answers for a missing entity and a wrong token.
    node = "Rest-%d" % (time.monotonic_ns() % 10 ** 6)
    eid = node.lower().replace("-", "_")
    units = {"temperature": "°C", "humidity": "%", "light": "%", "light_raw": "raw"}
    user = {"wifi": {"ssid": "home"}, "transports": ["http"], "webrepl": {"password": "s3cret"},
            "http": {"target": "ha", "timeout_s": 5}, "homeassistant": {"url": ha.url, "token": ha.token}}
    code = """
from upynode import ha
from upynode.ha import Ha
h = Ha(CFG, %r, %s, log)
out(h.send({"seq": 1, "temperature": 21.5, "humidity": 45.0, "light": 50.2, "light_raw": 514, "heap": 9000}))
out(h.send({"seq": 2, "temperature": 22.0, "humidity": 46.0, "light": 49.0, "light_raw": 502, "heap": 9000}))
out(ha.state(CFG, "sensor.%s_temperature", log))
out(ha.state(CFG, "sensor.%s_nobody_here", log))
""" % (node, json.dumps(units), eid, eid)
    results, logs = ha_vm(user, code)
    assert results == [True, True, "22.0", "unknown"], logs
    # HA answered: "unknown" (the LED keeps its state), never "unreachable"
    assert logs == ["ha: sensor.%s_nobody_here: HTTP 404 (no such entity)" % eid]
    states = {k: v for k, v in ha.states().items() if k.startswith("sensor.%s_" % eid)}
    assert sorted(states) == ["sensor.%s_%s" % (eid, q) for q in ("humidity", "light", "light_raw", "temperature")]
    assert states["sensor.%s_temperature" % eid]["attributes"] == {
        "unit_of_measurement": "°C", "device_class": "temperature",
        "friendly_name": node + " Temperature", "state_class": "measurement"}
    assert states["sensor.%s_humidity" % eid]["attributes"]["device_class"] == "humidity"
    light = states["sensor.%s_light" % eid]["attributes"]
    assert light["unit_of_measurement"] == "%" and "device_class" not in light
    raw = states["sensor.%s_light_raw" % eid]
    assert raw["state"] == "502" and "unit_of_measurement" not in raw["attributes"]
    assert raw["attributes"]["friendly_name"] == node + " Light raw"
    assert ha.problems_about(eid, tuple(units)) == []

    # A wrong token: one failed request per send, named, no secret logged
    user["homeassistant"]["token"] = "not-the-token"
    results, logs = ha_vm(user, code)
    # the second state asked waits (1 minute after a 401, then longer): False, nothing asked
    assert results == [False, False, "unknown", False], logs
    assert logs.count("http: ha %s: HTTP 401 (check homeassistant.token)" % ha.url) == 2, logs
    assert ("ha: sensor.%s_temperature: HTTP 401 (check homeassistant.token): asked again in 60 s" % eid
            in logs), logs
    assert not [ln for ln in logs if "not-the-token" in ln or ha.token in ln]
    # HA saw one failed login per send and per state asked, no more
    time.sleep(0.5)  # HA's log handler writes from its own thread
    assert len([p for p in ha.problems_about(eid) if "invalid authentication" in p]) == 3
