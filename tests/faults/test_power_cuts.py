"""Power cuts while the offline queue is written (lib/upynode/backlog.py):
the MicroPython VM appending readings and acknowledging them in a loop on
one flash folder, killed with SIGKILL at random points 200 times, each time
started again on what the last one left. After every cut the queue must
open, hold every record it had acknowledged writing, intact and in order;
at most the record being written when the power went is lost. Then the
queue is drained and the row compares what went in with what came out."""
import os

from upynode_vboard import faults

TRIALS = 200


def test_sigkill_while_appending_and_replaying_loses_at_most_the_record_being_written(board_build, tmp_path, fault_table):
    r = faults.queue_power_cuts(os.path.join(board_build, "lib"), tmp_path / "flash", trials=TRIALS, seed=7)
    row = fault_table.add(faults.row("power cut (SIGKILL) x%d while queueing/replaying" % TRIALS,
                                     r["produced"], r["delivered"], r["dropped"], may_lose=r["torn"]))
    row["problems"] += r["problems"]
    if r["problems"]:
        row["result"] = "FAIL" if row["result"] == "ok" else row["result"]
    assert not r["problems"], r["problems"][:10]
    assert row["result"] == "ok", row["problems"]
    # the cuts landed where they matter, and the queue was both filled past
    # its bound and emptied
    assert r["kills_after_open"] >= TRIALS // 2
    assert len(r["produced"]) > 10 * TRIALS and r["dropped"] > 0 and len(r["delivered"]) > 5 * TRIALS
    assert r["torn"] <= TRIALS
    # nothing of the queue is left on the flash once it is empty
    assert not [f for f in os.listdir(tmp_path / "flash") if f.startswith("backlog_")]
