"""The broker fails under a running node (MQTT, QoS 1): killed and restarted
30 s later, frozen past the keepalive, and a server that accepts and never
answers. Every reading the node took reaches the receivers, the old ones on
the backlog topic, and the node ends alive and publishing."""
import time

from conftest import assert_ok, fault_config
from helpers import HOME_AP
from upynode_vboard import faults


def readings_since(vb, start, outcome):
    """Readings logged from line `start` on with this mqtt outcome."""
    o = faults.outcomes(vb.lines[start:], "mqtt")
    return [k for k, v in o.items() if v == outcome]


def test_broker_killed_mid_run_and_restarted_30_s_later(fault_broker, collector, make_vboard, fault_table):
    vb = make_vboard(fault_config(fault_broker.port), aps=HOME_AP)
    with vb:
        faults.wait_readings(vb, 3)
        fault_broker.kill()
        n = len(vb.lines)
        time.sleep(30)
        fault_broker.restart()
        made, got = faults.settle(vb, [collector], start=len(vb.lines))
    row = fault_table.add(faults.row("broker killed, restarted 30 s later", made, got, faults.drops_reported(vb.lines), console=vb.lines))
    assert_ok(row, vb)
    assert len(readings_since(vb, n, "queued")) >= 20  # the outage was real: readings waited on flash
    assert collector.records(collector.backlog_topic), "the queued readings came on the backlog topic"
    assert vb.boots == 1


def test_broker_frozen_longer_than_the_keepalive_then_resumed(fault_broker, collector, make_vboard, fault_table):
    vb = make_vboard(fault_config(fault_broker.port), aps=HOME_AP)  # keepalive 10 s
    with vb:
        faults.wait_readings(vb, 3)
        fault_broker.freeze()  # SIGSTOP: the connection stays open, nothing answers
        n = len(vb.lines)
        time.sleep(15)  # the node pings after 5 s quiet and gives up at 10
        fault_broker.thaw()
        made, got = faults.settle(vb, [collector], start=len(vb.lines))
    row = fault_table.add(faults.row("broker frozen (SIGSTOP) 15 s > keepalive 10 s", made, got, faults.drops_reported(vb.lines), console=vb.lines))
    assert_ok(row, vb)
    assert len(readings_since(vb, n, "queued")) >= 10


def test_a_server_that_accepts_and_never_answers_then_a_broker(fault_broker, collector, make_vboard, fault_table):
    port = fault_broker.port
    time.sleep(1.5)  # the broker has saved the receivers' subscription
    fault_broker.kill()
    vb = make_vboard(fault_config(port), aps=HOME_AP)
    with faults.SilentServer(port) as silent:
        vb.start()
        faults.wait_readings(vb, 8)  # readings taken against the silent server
    assert silent.accepted, "the node never dialled the silent server"
    fault_broker.restart()
    made, got = faults.settle(vb, [collector], start=len(vb.lines))
    row = fault_table.add(faults.row("TCP server that never answers, then a broker", made, got,
                                     faults.drops_reported(vb.lines), console=vb.lines))
    assert_ok(row, vb)
    out = faults.outcomes(vb.lines, "mqtt")
    assert out[min(out)] == "queued", vb.output()[-3000:]
    assert vb.boots == 1
