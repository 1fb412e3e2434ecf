"""An NTP server that answers the year 2100, then the right time (issue
20): the node believes neither 2100 nor anything before its own source,
stamps its readings with its uptime meanwhile, and takes the right time
when it comes. Every reading is delivered, none dated 2100."""
import time

from conftest import assert_ok, fault_config
from helpers import HOME_AP
from upynode_vboard import faults

YEAR_2100 = 4102444800


def test_ntp_in_2100_then_right(fault_broker, collector, make_vboard, fault_table):
    vb = make_vboard(fault_config(fault_broker.port, ntp={"host": "127.0.0.1"}), aps=HOME_AP,
                     ntp_offset_s=YEAR_2100 - int(time.time()))
    with vb:
        vb.wait_for(r"^ntp: 127\.0\.0\.1: 2100-01-01 is not believed", timeout=30)
        faults.wait_readings(vb, 5)
        vb.world(ntp_offset_s=0)  # the server is right again: believed at the next try, within a minute
        n = len(vb.lines)
        vb.wait_for(r"^ntp: synced", timeout=90, start=n)
        made, got = faults.settle(vb, [collector], start=len(vb.lines))
    row = fault_table.add(faults.row("NTP answers 2100, then the right time", made, got,
                                     faults.drops_reported(vb.lines), console=vb.lines))
    assert_ok(row, vb)
    stamps = [r.get("ts") for r in made.values()]
    assert all(ts is None or abs(ts - time.time()) < 600 for ts in stamps), stamps  # none in 2100
    assert stamps[0] is None and stamps[-1] is not None  # uptime first, then the right time
