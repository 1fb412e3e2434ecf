"""Updates over WiFi under faults (issue 19), on the virtual board at the
chip's heap with the real firmware from ROMFS and the real build: the
WebREPL link cut at 20 random points of a deploy's staging, the power cut
(SIGKILL) at 20 random points of the apply step at boot, an update that
raises at import and one that never reaches its broker (both taken back
within update.TRIAL_BOOTS boots), and `deploy --host` to the running node
10 times in a row. Each row ends with a node that publishes, and every
reading it took, queued or not, delivered."""
import os
import random
import re
import time

from conftest import assert_ok, fault_config
from helpers import (HOME_AP, broker_unreachable_image, cli, deploy_summary, import_error_image, lib_files,
                     marked_build, marked_image, partition, stage)
from upynode_cli.romfs import build_image
from upynode_vboard import faults, runner
from upynode_vboard.services import free_port

TRIALS = 20
PASSWORD = "s3cret"  # fault_config's webrepl password
KEPT = r"^update: the new image delivered a reading: it stays"
TAKEN_BACK = r"^update: the new image delivered no reading in 3 boots: back to the previous one"


def deploy(port, build, *more, timeout=120):
    return cli("deploy", "--host", "127.0.0.1:%d" % port, "--build-dir", build, *more, password=PASSWORD,
               timeout=timeout)


def board_files(vb):
    return set(os.listdir(vb.board))


def read(vb, name):
    with open(os.path.join(vb.board, name), "rb") as f:
        return f.read()


def webrepl_node(fault_broker, make_vboard, **over):
    port = free_port()
    vb = make_vboard(fault_config(fault_broker.port, **over), heapsize=runner.GUARD_WEBREPL_HEAPSIZE,
                     aps=HOME_AP, webrepl_port=port)
    return vb, port


def test_the_webrepl_link_cut_at_20_points_of_an_update_s_staging(board_build, fault_broker, collector,
                                                                   make_vboard, fault_table, tmp_path):
    # A deploy through a relay that cuts the link n bytes in (n random over
    # the whole staging: hashing, the image's chunks, its check, the
    # rename, the trial file). After every cut the partition is untouched,
    # and what is on the filesystem is either nothing new, or the whole new
    # image (romfs.new), never a torn one under that name, and never the
    # running image on trial. The node, stopped at its REPL by the deploy,
    # goes back to its loop by itself once the session is gone
    # (upynode.stopped.ORPHAN_S); a last deploy, uncut, then installs the new image.
    rnd = random.Random(1919)
    other = marked_build(board_build, tmp_path / "other")
    new = build_image(lib_files(other))
    vb, port = webrepl_node(fault_broker, make_vboard)
    old = vb.rom_image

    def unstage():
        for f in board_files(vb):
            if f.startswith(("romfs.new", "romfs.trial")):
                os.remove(os.path.join(vb.board, f))

    with vb:
        faults.wait_readings(vb, 3)
        with faults.CutLink(port) as link:  # the whole staging once, uncut: its length
            r = deploy(link.port, other)
        deploy_summary(r)
        assert partition(vb)[:len(old)] == old  # staged: the running image stays where it is
        total = link.passed
        assert "romfs.new" in board_files(vb) and total > len(new)
        cuts, failed, whole = sorted(rnd.sample(range(1, total), TRIALS)), 0, 0
        for cut in cuts:
            unstage()  # each round stages the image from the start
            with faults.CutLink(port, cut) as link:
                r = deploy(link.port, other)
            assert link.cut, "cut at %d of %d B: the deploy ended before it" % (cut, total)
            if r.returncode:
                failed += 1
                last = r.stderr.strip().splitlines()[-1]
                assert last.startswith("upynode deploy: error:") and "Traceback" not in r.stderr, r.stderr
            files = board_files(vb)
            assert partition(vb)[:len(old)] == old, "cut at %d B: the partition was written" % cut
            if "romfs.new" in files:
                assert read(vb, "romfs.new") == new, "cut at %d B: a torn romfs.new" % cut
                whole += 1
            else:
                assert "romfs.trial" not in files, "cut at %d B: the running image on trial" % cut
        # No session now: the node restarts into its loop by itself, and
        # runs the old image or the whole staged one.
        n = len(vb.lines)
        vb.wait_for(r"^node: stopped over WebREPL and no session for 60 s: restarting", timeout=120, start=n)
        vb.wait_for(r"^\d+\.\d+: .* -> mqtt sent", timeout=60, start=n)
        # the last deploy, uncut
        n = len(vb.lines)
        deploy_summary(deploy(port, other, "--reset"))
        vb.wait_for(r"^\d+\.\d+: .* -> mqtt sent", timeout=90, start=n)
        made, got = faults.settle(vb, [collector], start=n)
    assert partition(vb)[:len(new)] == new
    row = fault_table.add(faults.row("WebREPL link cut x%d while staging an update (%d failed, %d left it whole)"
                                     % (TRIALS, failed, whole), made, got, faults.drops_reported(vb.lines),
                                     console=vb.lines))
    assert_ok(row, vb)
    assert failed >= TRIALS - 2  # nearly every cut came before the deploy was done


def test_power_cut_at_20_points_of_the_apply_step(board_build, fault_broker, collector, make_vboard,
                                                 fault_table):
    # romfs.new staged, the board powered on, and the power cut (SIGKILL)
    # in the boot that writes it (update.apply: keep the old image, erase,
    # write, check, clean up): 10 times at a random moment of that boot,
    # 10 times in the middle of a random flash write (the world's
    # "rom_cut_at": fakehw/_vrom.py). Powered on again, the node ends up
    # running the new image and delivering, with the old one kept.
    rnd = random.Random(2020)
    vb = make_vboard(fault_config(fault_broker.port), aps=HOME_AP)
    old, new = vb.rom_image, marked_image(board_build)
    writes = -(-len(new) // 512)
    took = None
    states = {"old": 0, "torn": 0, "new": 0}
    for trial in range(TRIALS + 1):
        if trial:
            runner.write_romfs(vb.state_dir, old)  # back to the old image, the new one staged again
        stage(vb, new)
        mid_write = trial and trial % 2 == 0
        if mid_write:
            vb.world(rom_cut_at=rnd.randint(1, writes))
        n = len(vb.lines)
        t0 = time.monotonic()
        vb.start()
        if trial == 0:  # how long the boot that writes takes, uncut: the cuts land within it
            vb.wait_for(r"^update: the new ROMFS image \(%d B\) is written" % len(new), timeout=60, start=n)
            took = time.monotonic() - t0
        else:
            if mid_write:
                vb.wait_for(r"^vrom: power cut", timeout=60, start=n)
            else:
                time.sleep(rnd.uniform(0, 1.1 * took))
            vb.stop()  # the power goes
            vb.world(rom_cut_at=0)
            p = partition(vb)[:len(new)]
            states["new" if p == new else "old" if p[:len(old)] == old else "torn"] += 1
            if "romfs.old" in board_files(vb):
                assert read(vb, "romfs.old") == old  # the kept copy is whole, whatever was cut
            n = len(vb.lines)
            vb.start()  # power back
        vb.wait_for(KEPT, timeout=90, start=n)
        vb.wait_for(r"^\d+\.\d+: .* -> mqtt sent", timeout=60, start=n)
        assert partition(vb)[:len(new)] == new
        assert not board_files(vb) & {"romfs.new", "romfs.writing", "romfs.trial"}
        assert read(vb, "romfs.old") == old
        if trial < TRIALS:
            vb.stop()
    made, got = faults.settle(vb, [collector], start=n)
    row = fault_table.add(faults.row("power cut (SIGKILL) x%d while applying an update (cut: %d old, %d torn, "
                                     "%d written)" % (TRIALS, states["old"], states["torn"], states["new"]),
                                     made, got, faults.drops_reported(vb.lines), console=vb.lines))
    assert_ok(row, vb)
    assert "Traceback" not in vb.output()
    assert states["torn"] >= TRIALS // 2  # at least the mid-write cuts left neither image


def rollback_row(vb, collector, fault_table, bad, what, timeout, trial="0"):
    old = vb.rom_image
    stage(vb, bad, trial)
    with vb:
        vb.wait_for(TAKEN_BACK, timeout=timeout)
        n = len(vb.lines)
        made, got = faults.settle(vb, [collector], timeout=90, start=n)
    row = fault_table.add(faults.row(what, made, got, faults.drops_reported(vb.lines), console=vb.lines))
    assert_ok(row, vb)
    assert partition(vb)[:len(old)] == old
    assert "romfs.trial" not in board_files(vb) and read(vb, "romfs.old") == bad
    assert "the new image delivered no reading in 3 boots" in read(vb, "romfs.rolledback").decode()
    return vb.lines


def test_an_update_that_raises_at_import_is_taken_back(board_build, fault_broker, collector, make_vboard,
                                                       fault_table):
    # main.py reports the error and restarts 30 s later: 3 boots on trial
    vb = make_vboard(fault_config(fault_broker.port), aps=HOME_AP)
    lines = rollback_row(vb, collector, fault_table, import_error_image(board_build),
                         "update raises at import: taken back", timeout=180)
    assert sum("broken update: no node here" in ln for ln in lines) >= 3


def test_an_update_that_never_reaches_its_broker_is_taken_back(board_build, fault_broker, collector,
                                                               make_vboard, fault_table, tmp_path):
    # It runs and queues every reading, and restarts when its time on trial
    # (5 s here: "0 5", as deploy --trial-s 5 writes it; at least 3
    # intervals) is up without one delivered; after 3 such boots the
    # previous image goes back and delivers what the new one queued.
    vb = make_vboard(fault_config(fault_broker.port), aps=HOME_AP)
    bad = broker_unreachable_image(board_build, str(tmp_path))
    lines = rollback_row(vb, collector, fault_table, bad, "update never reaches its broker: taken back",
                         timeout=120, trial="0 5")
    assert lines.count("update: the new image delivered no reading in its time on trial: restarting") == 3
    assert len([ln for ln in lines if ln.endswith("-> mqtt queued")]) >= 9  # on flash, then delivered


def test_deploy_over_webrepl_to_a_running_node_from_romfs_ten_times(board_build, fault_broker, collector,
                                                                    make_vboard, fault_table, tmp_path):
    # issue 19: `deploy --host` to a node running from ROMFS at a chip's heap
    # failed in 6 of 7 tries (MemoryError writing the partition from the
    # REPL) and left it with no firmware. Staged, each of 10 deploys in a row
    # (two builds in turn: a new image every time) is applied at the reset,
    # kept once it delivers, and the node goes on delivering.
    other = marked_build(board_build, tmp_path / "other")
    images = [build_image(lib_files(b)) for b in (board_build, other)]
    vb, port = webrepl_node(fault_broker, make_vboard)
    ok = 0
    with vb:
        faults.wait_readings(vb, 2)
        for i in range(10):
            mark = len(vb.lines)
            r = deploy(port, (other, board_build)[i % 2], "--reset")
            deploy_summary(r)  # exit status 0 and its summary
            assert "ROMFS image staged as romfs.new" in r.stderr, "deploy %d: %s" % (i + 1, r.stderr)
            vb.wait_for(KEPT, timeout=60, start=mark)
            assert partition(vb)[:len(images[(i + 1) % 2])] == images[(i + 1) % 2], "deploy %d" % (i + 1)
            ok += 1
        n = len(vb.lines)
        made, got = faults.settle(vb, [collector], start=n)
    row = fault_table.add(faults.row("deploy --host to the running node x10 (%d applied and kept)" % ok, made, got,
                                     faults.drops_reported(vb.lines), console=vb.lines))
    assert_ok(row, vb)
    out = vb.output()
    # the only tracebacks: deploy's Ctrl-C stopping the loop, once per deploy
    assert out.count("Traceback") == out.count("KeyboardInterrupt") == 10
    assert "MemoryError" not in out and "out of memory" not in out
    assert not re.search(r"^update: .*back to the previous", out, re.M)
