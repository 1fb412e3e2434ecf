"""A soak: the node's own loop (node.run) for 10,000 cycles against the
broker, on a clock whose waits between readings pass at once (a cycle's own
work takes its real time), so that it fits in CI. Every reading arrives; the
free heap after gc.collect() stays flat, and the table reports its drift."""
import os
import re
import subprocess

from conftest import assert_ok, fault_config
from helpers import HOME_AP
from upynode_cli.project import mpy_cross
from upynode_vboard import faults

CYCLES = 10000
SAMPLE = 500  # cycles between two heap samples

# main.py as deployed, with the loop's sleeps made instant and a heap sample
# (gc.mem_free() right after the loop's own gc.collect()) every SAMPLE cycles.
# Precompiled beside main.py as soak.mpy, as the firmware is: compiling it on
# the board would take heap the node never pays for its own main.py.
SOAK_MAIN = """
import gc
import socket as _so
import sys
import time as _time

from upynode import sock as _sock

# This module stands in for three modules of the loop, with functions
# only (a class per stand-in cost the node heap it does not have):
# - node.time: ticks as the loop sees them, real time plus every sleep it
#   asked for, so the waits between readings pass at once
# - node.gc: a heap sample right after the loop's own gc.collect()
# - upynode.sock's socket module: the node's sockets with Nagle off (umqtt
#   writes a QoS 1 publish in several small writes, and Nagle holding the
#   last one for the broker's delayed ACK costs ~40 ms a reading)
_off = 0
_n = 0
SOCK_STREAM = _so.SOCK_STREAM
getaddrinfo = _so.getaddrinfo
ticks_diff = _time.ticks_diff
ticks_add = _time.ticks_add
mem_free = gc.mem_free


def ticks_ms():
    return _time.ticks_add(_time.ticks_ms(), _off)


def sleep_ms(ms):
    global _off
    _off += ms


def collect():
    global _n
    gc.collect()
    _n += 1
    if _n %% %d == 0:
        print("soak: %%d collects, %%d bytes free" %% (_n, gc.mem_free()))


def socket(*a):
    s = _so.socket(*a)
    s.setsockopt(6, 1, 1)  # IPPROTO_TCP, TCP_NODELAY
    return s


def run():
    from upynode import startup
    cfg = startup.cfg
    startup.release()
    del startup
    gc.collect()
    from upynode import node
    me = sys.modules[__name__]
    node.time = node.gc = _sock.usocket = me
    node.run(cfg, cycles=%d)
    print("soak: done")
"""


def test_soak_10000_cycles_heap_flat_and_every_reading_delivered(fault_broker, collector, make_vboard, fault_table):
    # LED off: the heartbeat's 60 ms blink per reading is a real wait, and the soak is about the heap
    vb = make_vboard(fault_config(fault_broker.port, led={"mode": "off"}), aps=HOME_AP)
    src = os.path.join(vb.board, "soak.py")  # lib/ is in the ROMFS image
    with open(src, "w") as f:
        f.write(SOAK_MAIN % (SAMPLE, CYCLES))
    subprocess.run([mpy_cross(), "-o", src[:-3] + ".mpy", src], check=True)
    os.remove(src)
    vb.write_file("main.py", "import soak\nsoak.run()\n")
    with vb:
        vb.wait_for(r"^soak: done$", timeout=180)  # 15-25 s on 2 idle cores
        made = faults.produced(vb.lines)
        got = collector.wait_for_all(made, timeout=60)
    row = fault_table.add(faults.row("soak %d cycles" % CYCLES, made, got, faults.drops_reported(vb.lines), console=vb.lines))
    heap = [int(m.group(2)) for m in (re.match(r"^soak: (\d+) collects, (\d+) bytes free$", ln) for ln in vb.lines) if m]
    drift = heap[-1] - heap[1] if len(heap) > 2 else None
    row["notes"] += ["free heap after gc.collect(), every %d cycles: %s; drift from cycle %d to the end: %+d bytes"
                    % (SAMPLE, ", ".join(map(str, heap)), SAMPLE * 2, drift)]
    row["heap_drift"] = drift
    assert_ok(row, vb)
    assert len(made) == CYCLES and vb.boots == 1
    assert "out of memory" not in vb.output()
    assert len(heap) >= CYCLES // SAMPLE
    # flat: a leak of a tenth of a byte per cycle would show as 1 KB here
    assert abs(drift) < 1024, row["notes"]
