"""`make sim`, the README's first command: the full node (three sensors,
MQTT with discovery and HTTP to the receiver) in the heap-limited VM."""
import os
import subprocess
import sys

from helpers import NODE_ID
from upynode_cli.project import REPO


def test_sim_delivers_every_reading_to_both_sinks(board_build):
    sim = os.path.join(os.path.dirname(sys.executable), "upynode-sim")
    r = subprocess.run([sim, "--cycles", "4"], capture_output=True, text=True, timeout=180, cwd=REPO)
    out = r.stdout
    assert r.returncode == 0, out[-3000:] + r.stderr[-3000:]
    assert "sim: mqtt: 4/4 readings delivered" in out
    assert "sim: http: 4/4 readings delivered" in out
    assert out.rstrip().endswith("sim: 4/4 readings delivered")
    assert "receiver at http://127.0.0.1:" in out
    assert "out of memory" not in out
    assert out.count("broker| home/%s/state #" % NODE_ID) == 4
