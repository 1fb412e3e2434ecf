"""Power cuts during a config write over WebREPL (`upynode config set
--host`, which uploads config.json.tmp, checks its hash on the node and
renames it over config.json): the VM is killed (SIGKILL) at random points
of the write, then powered on again. Every time the node boots with the old
config or the new one, whole, and runs its loop; never half of one, never
setup mode."""
import json
import os
import random
import re
import subprocess
import time

from conftest import fault_config
from helpers import HOME_AP, upynode_exe
from upynode_vboard import faults, runner
from upynode_vboard.services import free_port

TRIALS = 20
LOOP_LINE = r"^node \S+: .* every (\d+) s"


def config_set(port, value):
    env = dict(os.environ, UPYNODE_WEBREPL_PASSWORD="s3cret")
    return subprocess.Popen([upynode_exe(), "config", "set", "interval_s=%d" % value, "--host", "127.0.0.1:%d" % port],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)


def test_power_cut_during_a_config_write_over_webrepl(fault_broker, make_vboard, fault_table):
    rnd = random.Random(11)
    port = free_port()
    vb = make_vboard(fault_config(fault_broker.port, interval_s=2), heapsize=runner.GUARD_WEBREPL_HEAPSIZE,
                     aps=HOME_AP, webrepl_port=port)
    path = os.path.join(vb.board, "config.json")
    whole, half, cut_mid_write, took = [], [], 0, None
    kept = {"old": 0, "new": 0}
    for trial in range(TRIALS + 1):
        old = json.load(open(path))
        new = dict(old, interval_s=2 + (old["interval_s"] - 1) % 3)  # 2 -> 3 -> 4 -> 2 ...
        n = len(vb.lines)
        vb.start()
        vb.wait_for(LOOP_LINE, timeout=40, start=n)
        vb.wait_for(r"^WebREPL server started", timeout=10, start=n)
        t0 = time.monotonic()
        cli = config_set(port, new["interval_s"])
        if trial == 0:  # how long a write takes, uncut: the cuts land within it
            out = cli.communicate(timeout=60)[0].decode()
            took = time.monotonic() - t0
            assert cli.returncode == 0 and "config.json written" in out, out
            vb.stop()
            continue
        time.sleep(rnd.uniform(0, 1.1 * took))
        vb.stop()  # the power goes
        out = cli.communicate(timeout=60)[0].decode()
        if cli.returncode:
            cut_mid_write += 1
        # power on: the node must run its loop with one whole config
        n = len(vb.lines)
        vb.start()
        line = vb.wait_for(LOOP_LINE + r"|^setup mode|^boot: (?!removed|restored)", timeout=40, start=n)
        try:
            got = json.load(open(path))
        except ValueError:
            got = None
        m = re.search(LOOP_LINE, line)
        if got in (old, new) and m and int(m.group(1)) == got["interval_s"]:
            whole.append(trial)
            kept["old" if got == old else "new"] += 1
        else:
            half.append((trial, line, out[-200:]))
        vb.stop()
    produced = {(1, t): {"boot": 1, "seq": t} for t in range(1, TRIALS + 1)}
    row = fault_table.add(faults.row("config write over WebREPL cut x%d (boots old or new whole)" % TRIALS,
                                     produced, [produced[(1, t)] for t in whole]))
    row["notes"] = ["%d writes cut before they finished; booted with the old config %d times, the new %d"
                    % (cut_mid_write, kept["old"], kept["new"])]
    assert not half, half
    assert row["result"] == "ok"
    assert cut_mid_write >= 2, "the cuts should interrupt some writes"
    assert not [f for f in os.listdir(vb.board) if f.endswith(".tmp")]
