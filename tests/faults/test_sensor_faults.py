"""Sensors failing under a running node: a DHT11 that times out, one that
answers every other try, one whose frames fail their checksum, an MCP9808
unplugged and plugged back. A reading
with a failed sensor is still a reading: it carries "err" naming the sensor,
keeps the other quantities, and arrives like any other."""
from conftest import assert_ok, fault_config
from helpers import HOME_AP
from upynode_vboard import faults

SENSORS = [{"type": "mcp9808"}, {"type": "dht11", "prefix": "room_"}]


def test_dht_timeouts_and_the_mcp9808_unplugged_and_back(fault_broker, collector, make_vboard, fault_table):
    vb = make_vboard(fault_config(fault_broker.port, sensors=SENSORS), aps=HOME_AP)
    phases = [{"dht": "timeout"}, {"dht": "flaky"}, {"mcp9808": "absent"}, {"mcp9808": "absent", "dht": "timeout"},
              {"dht": "checksum"}]
    starts = []
    with vb:
        faults.wait_readings(vb, 3)
        for f in phases:
            vb.world(faults=f)
            starts.append(len(vb.lines))
            faults.wait_readings(vb, 3, start=starts[-1])
        vb.world(faults={})  # plugged back
        back = len(vb.lines)
        # within a few readings every sensor is read again
        vb.wait_for(r'^\d+\.\d+: \{(?!.*"err").*\} -> ', timeout=15, start=back)
        made, got = faults.settle(vb, [collector], start=back)
    row = fault_table.add(faults.row("DHT timeouts, flaky DHT, DHT checksum errors, MCP9808 unplugged and back",
                                     made, got,
                                     faults.drops_reported(vb.lines), console=vb.lines))
    assert_ok(row, vb)

    def errs(start, end=None):
        return [r.get("err", {}) for r in faults.produced(vb.lines[start:end]).values()]
    assert any(e.get("dht11") for e in errs(starts[0], starts[1])), "the DHT's timeouts were reported"
    assert not any("mcp9808" in e for e in errs(starts[0], starts[2]))
    mcp = errs(starts[2] + 2, starts[3])
    assert mcp and all("mcp9808" in e for e in mcp), "the unplugged MCP9808 was reported"
    assert any("checksum" in e.get("dht11", "") for e in errs(starts[4], back)), "the bad checksums were reported"
    # plugged back, the MCP9808 is read again within a few readings
    after = sorted(faults.produced(vb.lines[back:]).items())
    ok = [r for k, r in after[:5] if "err" not in r]
    assert ok and ok[0]["temperature"] == 21.5 and ok[0]["room_temperature"] == 21, after[:5]
    # the failing sensor's quantities are missing, the others are there
    for r in made.values():
        e = r.get("err", {})
        assert ("temperature" in r) != ("mcp9808" in e), r
        assert ("room_humidity" in r) != ("dht11" in e), r
