"""The broker fails under a running node (MQTT, QoS 1): killed and restarted
30 s later, frozen past the keepalive, and a server that accepts and never
answers. Every reading the node took reaches the receivers, the old ones on
the backlog topic, and the node ends alive and publishing."""
import time

from conftest import fault_config
from helpers import HOME_AP
from upynode_vboard import faults


def readings_since(vb, start, outcome):
    """Readings logged from line `start` on with this mqtt outcome."""
    o = faults.outcomes(vb.lines[start:], "mqtt")
    return [k for k, v in o.items() if v == outcome]


def test_broker_killed_mid_run_and_restarted_30_s_later(fault_broker, collector, make_vboard, fault_table):
    vb = make_vboard(fault_config(fault_broker.port), aps=HOME_AP)
    with vb:
        collector.wait(lambda r: len(r) >= 3, timeout=40, what="3 live readings")
        fault_broker.kill()
        n = len(vb.lines)
        time.sleep(30)
        fault_broker.restart()
        made, got = faults.settle(vb, [collector], start=n)
    row = fault_table.add(faults.row("broker killed, restarted 30 s later", made, got, faults.drops_reported(vb.lines)))
    assert row["result"] == "ok", row["problems"]
    assert len(readings_since(vb, n, "queued")) >= 20  # the outage was real: readings waited on flash
    assert collector.records(collector.backlog_topic), "the queued readings came on the backlog topic"
    assert vb.boots == 1
