"""WiFi gone for N cycles under a running node, N below and above what its
queue holds (backlog.max_kb 2: about twenty readings; 1 KB, the least, is
refused for these sensors, whose largest record with both failing is a
quarter of 1.5 KB). Below, every reading
arrives; above, the readings lost are exactly the ones the node reported
dropping from its full queue, the oldest first."""
import pytest

from conftest import assert_ok, fault_config
from helpers import HOME_AP
from upynode_vboard import faults

DOWN = {"home": dict(HOME_AP["home"], up=False)}


@pytest.mark.parametrize("cycles, over", [(5, False), (30, True)], ids=["below-capacity", "above-capacity"])
def test_wifi_down_for_n_cycles(fault_broker, collector, make_vboard, fault_table, cycles, over):
    vb = make_vboard(fault_config(fault_broker.port, backlog={"max_kb": 2, "per_cycle": 5}), aps=HOME_AP)
    with vb:
        faults.wait_readings(vb, 3)
        vb.world(aps=DOWN)
        n = len(vb.lines)
        faults.wait_readings(vb, cycles, start=n)
        vb.world(aps=HOME_AP)
        made, got = faults.settle(vb, [collector], start=len(vb.lines))
    dropped = faults.drops_reported(vb.lines, "mqtt")
    row = fault_table.add(faults.row("WiFi down %d cycles (%s the queue's capacity)" % (cycles, "above" if over else "below"),
                                     made, got, dropped, console=vb.lines))
    assert_ok(row, vb)
    assert vb.wait_for(r"^wifi: connection lost", start=n)
    queued = [k for k, v in faults.outcomes(vb.lines[n:], "mqtt").items() if v == "queued"]
    assert len(queued) >= cycles - 1
    if over:
        assert dropped > 0 and row["lost"] == dropped
        # the oldest went first: what is missing is the start of the outage
        lost = sorted(tuple(k) for k in row["missing"])
        assert lost == sorted(queued)[:len(lost)]
    else:
        assert dropped == 0 and row["lost"] == 0
