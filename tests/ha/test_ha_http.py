"""The node over HTTP to Home Assistant's REST API (http.target "ha"), and
the LED that follows an entity (led.mode "ha_state"), against the real HA:
what tests/vm used the stand-in (upynode_vboard.ha_standin) for."""
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
        assert temp["attributes"] == {"friendly_name": node + " temperature", "device_class": "temperature",
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
