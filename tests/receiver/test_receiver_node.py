"""The firmware as deployed, in the MicroPython VM, publishing to a real broker that
restarts, and the receiver's MQTT subscriber storing what it publishes: the live
messages and the queue replayed after the outage are accepted as they are (no message
refused) and the receiver holds each reading the node took, once."""
import time

import pytest

from helpers import HOME_AP, NODE_ID, node_config
from upynode_receiver import store
from upynode_receiver.mqtt import MqttIngest
from upynode_vboard import brokers, faults


@pytest.mark.broker     # a broker of its own, to restart
def test_the_receiver_holds_every_reading_of_a_node_across_a_broker_outage(make_vboard, tmp_path):
    db_path = tmp_path / "readings.sqlite3"
    port = brokers.free_port()
    broker = brokers.Broker(port=port).start()
    try:
        with MqttIngest(db_path, "127.0.0.1", port, client_id="receiver-node-test", reconnect_max_s=1) as ingest:
            # discovery off: what it announces is not what this test is about, and it costs heap
            cfg = node_config(port, mqtt={"timeout_s": 2, "keepalive": 10, "discovery": False},
                              ntp={"host": ""}, retry={"min_s": 1, "max_s": 2})
            vb = make_vboard(cfg, aps=HOME_AP)
            with vb:
                faults.wait_readings(vb, 3)
                broker.stop()
                faults.wait_readings(vb, 3, start=len(vb.lines))      # queued on the node's flash
                broker = brokers.Broker(port=port).start()
                vb.wait_for(r"^backlog mqtt: replayed \d+, 0 left", timeout=60)
                vb.wait_for(faults.DRAINED % "mqtt", timeout=30, start=len(vb.lines))
                vb.stop()
            made = faults.produced(vb.lines)
            t_end = time.monotonic() + 20
            while set(map(tuple, store.held(db_path, NODE_ID))) < set(made) and time.monotonic() < t_end:
                time.sleep(0.2)
            assert ingest.rejected == 0
        held = store.held(db_path, NODE_ID)
        # What the node was sending as it was switched off may have arrived: nothing else.
        assert set(made) <= set(map(tuple, held)) and len(held) <= len(made) + 1
        outcomes = faults.outcomes(vb.lines, "mqtt")
        assert "queued" in outcomes.values(), "the outage queued nothing: the test did not test the backlog"
    finally:
        broker.stop()
