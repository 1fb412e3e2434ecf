"""Boot the virtual NodeMCU and watch its readings arrive at real sinks.

The firmware in build/board runs in the MicroPython VM with a limited heap,
on fake hardware whose world (temperature, light) drifts a little each
cycle. Two sinks run on 127.0.0.1: an MQTT broker (mosquitto if installed,
else amqtt), where a subscriber prints each reading as the broker delivered
it, and the reference receiver (upynode_receiver), which the node reaches over
HTTP with the tutorial's URL and which draws the readings on its page.
"""
import argparse
import json
import math
import os
import shutil
import sys
import time

from upynode_cli.project import BOARD, BUILD

from . import brokers, runner
from .mqttwatch import Watch
from .receiver_process import ReceiverProcess

SSID, WIFI_PASSWORD = "upynode-sim", "sim-secret"
API_KEY = "sim-api-key"

# The embedded default config: the seed tutorial's kitchen node, LED on
# while the temperature is at or above 20 degC.
def sim_config(port, interval, transports=("mqtt",), receiver_url=""):
    return {
        "transports": list(transports),
        # the reference receiver's batch API: one POST per reading, with its
        # identity, so the receiver holds every reading once
        "http": {"target": "receiver", "url": receiver_url, "api_key": API_KEY},
        "wifi": {"ssid": SSID, "password": WIFI_PASSWORD, "timeout_s": 5},
        "webrepl": {"password": "upysim"},
        "interval_s": interval,
        "sensors": [{"type": "adc", "quantity": "light"},
                    {"type": "mcp9808"},
                    {"type": "dht22", "prefix": "room_"}],
        "led": {"mode": "threshold", "quantity": "temperature", "threshold": 20},
        "mqtt": {"host": "127.0.0.1", "port": port, "base_topic": "home"},
    }


def world_at(i):
    # A kitchen that warms past 20 degC and cools again; the light follows a cloud.
    return {"temperature": round(19.0 + 2.5 * math.sin(i / 2.0), 2),
            "humidity": round(48 + 5 * math.cos(i / 3.0), 1),
            "light": int(600 + 300 * math.sin(i / 1.7))}


def fmt(msg):
    parts = []
    for k in sorted(msg):
        if k not in ("boot", "seq", "ts", "up", "heap", "rssi", "reset", "q", "drop", "err"):
            parts.append("%s=%s" % (k, msg[k]))
    if msg.get("err"):
        parts.append("errors=%s" % msg["err"])
    return "  ".join(parts)


def run(cycles, interval, heapsize, echo, transport="both", serve=False):
    sim_dir = str(BUILD / "sim")
    board = os.path.join(sim_dir, "board")
    shutil.rmtree(sim_dir, ignore_errors=True)
    shutil.copytree(BOARD, board)
    transports = ("mqtt", "http") if transport == "both" else (transport,)
    rx = None
    if "http" in transports:
        rx = ReceiverProcess(os.path.join(sim_dir, "receiver.sqlite3"), API_KEY,
                             log_path=os.path.join(sim_dir, "receiver.log")).start()
        print("sim: receiver at %s/ (the page with the charts; it stays up until the sim ends)" % rx.url)
    try:
        ok = _run(board, sim_dir, cycles, interval, heapsize, echo, transports, rx)
        if rx and serve:
            print("sim: the receiver keeps serving %s/ until Ctrl-C" % rx.url, flush=True)
            try:
                rx.proc.wait()
            except KeyboardInterrupt:
                pass
    finally:
        if rx:
            rx.stop()
    return ok


def http_delivered(rx, cycles):
    # Readings the receiver holds, by their (boot, seq), of the first `cycles`
    import urllib.request
    with urllib.request.urlopen(rx.url + "/api/readings?quantity=temperature", timeout=10) as r:
        return len({(x["boot"], x["seq"]) for x in json.load(r) if x.get("seq") and x["seq"] <= cycles})


def _run(board, sim_dir, cycles, interval, heapsize, echo, transports, rx):
    with brokers.Broker() as broker:
        print("sim: %s broker on 127.0.0.1:%d; virtual NodeMCU with a %s heap" % (broker.kind, broker.port, heapsize))
        watch = Watch(broker.port, ("home/+/state",))
        vb = runner.VBoard(board, os.path.join(sim_dir, "state"), heapsize=heapsize, echo=echo)
        vb.world(aps={SSID: {"password": WIFI_PASSWORD}}, **world_at(0))
        vb.write_config(sim_config(broker.port, interval, transports, rx.url if rx else ""))
        seen = {}
        deadline = time.monotonic() + 30 + cycles * (interval + 3)
        with vb:
            if "mqtt" not in transports:  # the node's console tells when it sent
                try:
                    vb.wait_for(r"^\d+\.%d: .* sent" % cycles, timeout=deadline - time.monotonic())
                except AssertionError:
                    pass
            while "mqtt" in transports and len(seen) < cycles and time.monotonic() < deadline:
                try:
                    msgs = watch.wait(lambda m: len(m) > len(seen) or not vb.running(), timeout=2)
                except AssertionError:
                    continue
                if not vb.running():
                    break
                for topic, payload, _ in msgs:
                    msg = json.loads(payload)
                    seq = msg.get("seq")
                    if seq in seen or not isinstance(seq, int) or seq > cycles:
                        continue
                    seen[seq] = msg
                    led = "on" if vb.state("gpio2") == 0 else "off"  # active-low
                    print("broker| %s #%d: %s  (LED %s)" % (topic, seq, fmt(msg), led), flush=True)
                    vb.world(**world_at(seq))
            # the last cycle's HTTP requests follow its MQTT publish
            t_end = time.monotonic() + 5
            while rx and http_delivered(rx, cycles) < cycles and time.monotonic() < t_end:
                time.sleep(0.2)
        watch.close()
    counts = []
    for sink in transports:
        if sink == "mqtt":
            counts.append(len([s for s in seen if 1 <= s <= cycles]))
        else:
            counts.append(http_delivered(rx, cycles))
        print("sim: %s: %d/%d readings delivered" % (sink, counts[-1], cycles))
    # a reading counts as delivered when every sink has it
    print("sim: %d/%d readings delivered" % (min(counts), cycles))
    ok = min(counts) == cycles
    if not ok:
        print(vb.output()[-3000:], file=sys.stderr)
    return ok


def main(argv=None):
    ap = argparse.ArgumentParser(prog="upynode-sim", description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=10, help="readings to wait for (default 10)")
    ap.add_argument("--interval", type=int, default=2, help="interval_s of the node (default 2: the DHT22's minimum)")
    ap.add_argument("--heapsize", default=runner.HEAPSIZE, help="MicroPython heap (default %s)" % runner.HEAPSIZE)
    ap.add_argument("--quiet", action="store_true", help="do not show the node's serial console")
    ap.add_argument("--serve", action="store_true", help="keep the receiver's page up after the run, until Ctrl-C")
    ap.add_argument("--transport", choices=("both", "mqtt", "http"), default="both",
                    help="where the node sends: the broker, the receiver, or both (default)")
    a = ap.parse_args(argv)
    if a.cycles < 1:
        ap.error("--cycles must be at least 1")
    if not (BOARD / "boot.py").exists():
        sys.exit("sim: build/board is missing: run `upynode build` (or `make sim`)")
    sys.exit(0 if run(a.cycles, a.interval, a.heapsize, not a.quiet, a.transport, a.serve) else 1)


if __name__ == "__main__":
    main()
