"""Deep sleep ("sleep": "deep"): 50 wakes, each a reset that takes one
reading and sleeps again (the runner waits 1 % of the sleep; a wake keeps its
boot number and takes the next seq), with the broker down for 10 of them. The readings of those wakes wait on flash across the sleeps and
arrive on the backlog topic; Home Assistant discovery goes out once in the
whole run, not at every wake."""
import time

import pytest

from conftest import assert_ok, fault_config
from helpers import HOME_AP, NODE_ID
from upynode_vboard import faults

WAKES = 50
DOWN = (20, 30)  # the broker is down from the 20th reading to the 30th


@pytest.fixture
def discovery_collector(fault_broker):
    c = faults.Collector(fault_broker.port, NODE_ID, also=("homeassistant/#",))
    yield c
    c.close()


def test_deep_sleep_50_wakes_broker_down_for_10(fault_broker, discovery_collector, make_vboard, fault_table):
    collector = discovery_collector
    cfg = fault_config(fault_broker.port, sleep="deep", interval_s=10, awake_max_s=10,
                       led={"mode": "off"})
    vb = make_vboard(cfg, aps=HOME_AP)
    t_end = time.monotonic() + 300  # the whole run; ~90 s when all is well

    def left():
        return max(1, t_end - time.monotonic())
    with vb:
        faults.wait_readings(vb, 2, timeout=left())
        # after a power-on the node stays up 30 s for WebREPL, then sleeps between readings
        vb.wait_for(r"^\[vboard: deep sleep \d+ ms\]$", timeout=60)
        faults.wait_readings(vb, DOWN[0], timeout=left())
        fault_broker.kill()
        faults.wait_readings(vb, DOWN[1], timeout=left())
        fault_broker.restart()
        faults.wait_readings(vb, WAKES, timeout=left())
        made, got = faults.settle(vb, [collector], start=len(vb.lines))
    row = fault_table.add(faults.row("deep sleep, %d wakes, broker down for %d" % (len(made), DOWN[1] - DOWN[0]),
                                     made, got, faults.drops_reported(vb.lines), console=vb.lines))
    assert_ok(row, vb)
    assert len(vb.wakes) >= WAKES - 1
    # one reading per wake (and the first few in the 30 s after power-on)
    assert len(vb.wakes) <= len(made) <= len(vb.wakes) + 5, (len(made), len(vb.wakes))
    queued = [k for k, v in faults.outcomes(vb.lines, "mqtt").items() if v == "queued"]
    assert len(queued) >= DOWN[1] - DOWN[0] - 1
    configs = [t for t, p in collector.live("homeassistant/") if t.endswith("/config") and p]
    assert configs and len(configs) == len(set(configs)), "discovery sent more than once: %s" % sorted(configs)
