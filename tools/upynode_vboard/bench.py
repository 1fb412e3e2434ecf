"""Heap figures for the firmware, measured in the MicroPython VM.

1. Import cost of each module as deployed (.mpy) and from source: the heap
   it keeps, and the smallest heap in which the import succeeds at all
   (compiling on the device needs far more than loading a .mpy). The fakes
   are loaded first and their cost is not counted.
2. A boot plus a few cycles against a real broker: the free heap the node
   reports in each state message.

The unix port is 64-bit: its objects are up to twice the ESP8266's, so
these are upper bounds for the chip.
"""
import json
import os
import shutil
import subprocess
import tempfile

from upynode_cli import build
from upynode_cli.project import BOARD, LIB, micropython

from . import brokers, runner
from .mqttwatch import Watch

# Every firmware module (read from lib/, so a new one is measured without
# editing this list) and the two fetched dependencies.
MODULES = sorted("upynode." + f[:-3] for f in os.listdir(LIB / "upynode")
                 if f.endswith(".py") and f != "__init__.py") + ["umqtt.simple", "urequests"]

PROBE = """
import gc, sys
import machine, network, dht, _world, webrepl, esp
for name in %r:
    gc.collect()
    before = gc.mem_alloc()
    try:
        __import__(name)
    except ImportError as e:
        print(name, 'missing')
        continue
    gc.collect()
    print(name, gc.mem_alloc() - before)
"""


def _probe(env, module, heap_kb):
    r = subprocess.run([micropython(), "-X", "heapsize=%dK" % heap_kb, "-c", PROBE % ([module],)],
                       capture_output=True, text=True, env=env)
    lines = r.stdout.strip().splitlines()
    return lines[-1].split()[-1] if r.returncode == 0 and lines else None


def import_costs(lib_dir):
    """{module: (bytes kept, smallest heap in KB the import succeeds in)}"""
    env = dict(os.environ, MICROPYPATH=os.pathsep.join(["", runner.compiled_fakes(), lib_dir]),
               UPYNODE_VBOARD=tempfile.mkdtemp())
    # Each module alone, in a fresh VM, so shared imports are counted in each.
    out = {}
    for m in MODULES:
        kept = _probe(env, m, 256) or "error"
        lo, hi = 8, 256  # binary search on the heap size, in KB
        while lo < hi:
            mid = (lo + hi) // 2
            if _probe(env, m, mid) is None:
                lo = mid + 1
            else:
                hi = mid
        out[m] = (kept, lo)
    return out


def cycles(n=5):
    tmp = tempfile.mkdtemp(prefix="upynode-bench-")
    board = os.path.join(tmp, "board")
    shutil.copytree(BOARD, board)
    with brokers.Broker() as b:
        w = Watch(b.port, ("home/+/state",))
        vb = runner.VBoard(board, os.path.join(tmp, "state"))
        vb.world(aps={"home": {"password": "pw"}})
        vb.write_config({"wifi": {"ssid": "home", "password": "pw"}, "interval_s": 1,
                         "webrepl": {"password": "bench"},
                         "mqtt": {"host": "127.0.0.1", "port": b.port},
                         "sensors": [{"type": "adc"}, {"type": "mcp9808"}]})
        with vb:
            msgs = w.wait(lambda m: len(m) >= n, timeout=60)
        w.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return [json.loads(p)["heap"] for _, p, _ in msgs[:n]]


def main():
    board_lib = str(BOARD / "lib")
    src = tempfile.mkdtemp(prefix="upynode-src-")
    build.build(src, source=True)
    mpy, py = import_costs(board_lib), import_costs(os.path.join(src, "lib"))
    shutil.rmtree(src, ignore_errors=True)
    print("bench: importing each module alone in the unix port (fakes loaded first, not counted)")
    print("  %-24s %12s %12s %14s %14s" % ("module", "kept .mpy", "kept .py", "min heap .mpy", "min heap .py"))
    for m in MODULES:
        print("  %-24s %12s %12s %13sK %13sK" % (m, mpy[m][0], py[m][0], mpy[m][1], py[m][1]))
    free = cycles()
    print("bench: free heap reported by the node in its first %d state messages with -X heapsize=%s: %s"
          % (len(free), runner.HEAPSIZE, ", ".join(map(str, free))))


if __name__ == "__main__":
    main()
