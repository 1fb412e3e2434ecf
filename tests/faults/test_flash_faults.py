"""The node's flash at its edges (issue 20): full while the broker is down,
full at boot, a byte flipped in the queue. Each reading the node took
reaches the receivers, or the node said it lost it and why (counted in
"drop"); it never resets over it."""
import os
import time

from conftest import assert_ok, fault_config
from helpers import HOME_AP
from upynode_vboard import faults


def board_bytes(vb):
    """What the board's files take (the virtual flash counts their bytes)."""
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(str(vb.board)) for f in fs)


def test_flash_full_while_queueing_then_freed(fault_broker, collector, make_vboard, fault_table):
    # The broker is down and the queue fills the flash: readings that
    # cannot be queued are LOST (flash full), counted; once a file is
    # deleted (room again) they queue, and all are delivered when the
    # broker is back.
    vb = make_vboard(fault_config(fault_broker.port), aps=HOME_AP)
    ballast = os.path.join(str(vb.board), "ballast.bin")
    with open(ballast, "wb") as f:
        f.write(b"." * 6000)
    # room for the boot's files and 8 KB (the queue keeps 2 blocks free) plus ~2 KB of readings
    vb.world(fs_kb=(board_bytes(vb) + 8192 + 4096) // 1024 + 2)
    with vb:
        faults.wait_readings(vb, 3)
        fault_broker.kill()
        n = len(vb.lines)
        vb.wait_for(r"-> mqtt LOST \(flash full\)", timeout=60, start=n)
        faults.wait_readings(vb, 3, start=len(vb.lines))  # a few more lost
        os.remove(ballast)  # room again
        m = len(vb.lines)
        vb.wait_for(r"-> mqtt queued", timeout=30, start=m)
        fault_broker.restart()
        made, got = faults.settle(vb, [collector], start=len(vb.lines))
    lost = faults.drops_reported(vb.lines)
    row = fault_table.add(faults.row("flash full while queueing (broker down), then freed", made, got, lost,
                                     console=vb.lines))
    assert_ok(row, vb)
    out = faults.outcomes(vb.lines, "mqtt")
    assert sum(1 for v in out.values() if v == "LOST (flash full)") >= 3
    assert sum(1 for v in out.values() if v == "queued") >= 5
    assert vb.boots == 1, "the node reset"
    # the loss is in the next state message's drop
    assert any('"drop":' in ln for ln in vb.lines[m:])


def test_boot_with_a_full_flash(fault_broker, collector, make_vboard, fault_table):
    # Booting with no room for boot.n or a compaction used to crash the boot
    # and restart every 30 s; now the node runs and sends live.
    vb = make_vboard(fault_config(fault_broker.port), aps=HOME_AP)
    boot_n = os.path.join(str(vb.board), "boot.n")
    before = open(boot_n).read() if os.path.exists(boot_n) else None
    vb.world(fs_kb=board_bytes(vb) // 1024)  # full: not a byte to spare
    with vb:
        faults.wait_readings(vb, 5)
        made, got = faults.settle(vb, [collector], start=len(vb.lines))
    row = fault_table.add(faults.row("boot with the flash full", made, got, faults.drops_reported(vb.lines),
                                     console=vb.lines))
    assert_ok(row, vb)
    assert vb.boots == 1 and not any("Traceback" in ln for ln in vb.lines), vb.lines[-20:]
    # the flash was full indeed: the boot counter could not be written
    assert (open(boot_n).read() if os.path.exists(boot_n) else None) == before


def test_a_byte_flipped_mid_queue_at_open_and_while_open(fault_broker, collector, make_vboard, fault_table):
    # A queued record goes bad (flash wear, a stray write): only it is
    # lost, counted; the records after it are delivered. Once while the
    # node is down (found at open), once while it runs (found by replay).
    vb = make_vboard(fault_config(fault_broker.port), aps=HOME_AP)
    q = os.path.join(str(vb.board), "backlog_mqtt.q")

    def flip(at):
        with open(q, "r+b") as f:
            f.seek(at)
            b = f.read(1)
            f.seek(at)
            f.write(bytes((b[0] ^ 0x40,)))
    with vb:
        faults.wait_readings(vb, 3)
        fault_broker.kill()
        faults.wait_readings(vb, 20, start=len(vb.lines))
    # powered off with 20 queued: record 5's data goes bad
    sizes = []
    with open(q, "rb") as f:
        f.read(4)
        while True:
            h = f.read(4)
            if len(h) < 4:
                break
            sizes.append(h[0] << 8 | h[1])
            f.seek(sizes[-1], 1)
    flip(4 + sum(4 + s for s in sizes[:4]) + 4 + 10)
    fault_broker.restart()
    fault_broker.freeze()  # up, but the node cannot deliver yet: the queue stays
    vb.start()
    vb.wait_for(r"backlog mqtt: corrupt record\(s\) skipped: 1 counted in drop", timeout=30)
    faults.wait_readings(vb, 3, start=len(vb.lines))
    # while open: the oldest record goes bad before its replay
    with open(q, "rb") as f:
        head = f.read(4)
    pos = os.path.join(str(vb.board), "backlog_mqtt.pos")
    start = int(open(pos).read().split()[1]) if os.path.exists(pos) else 4
    flip(start + 4 + 10)
    fault_broker.thaw()
    made, got = faults.settle(vb, [collector], start=len(vb.lines))
    row = fault_table.add(faults.row("a byte flipped mid-queue, at open and while open", made, got,
                                     faults.drops_reported(vb.lines), console=vb.lines))
    assert head[:2] == b"UQ"
    assert_ok(row, vb)
    assert faults.drops_reported(vb.lines) == 2, [ln for ln in vb.lines if "counted in drop" in ln]
    assert vb.boots == 2 and not any("torn" in ln for ln in vb.lines)
