"""A staged ROMFS update (issue 19): `upynode deploy` leaves the new image
as romfs.new; the next boot writes it into the partition (update.py, run by
boot.py before anything is imported from /rom), keeps the old image as
romfs.old and restarts into the new one. Power is cut in the middle of the
write at several points (fakehw/_vrom.py: the world's "rom_cut_at" stops the
n-th flash write halfway and hangs, and the test powers the board off): the
next boot writes it again, and the node delivers from the new image. An
image that delivers stays; one in a crash loop is taken back. The faults
suite (tests/faults/test_update_faults.py) has the rest: link cuts while
staging, SIGKILL while applying, rollbacks, deploy 10 times in a row."""
import os
import random
import time

from helpers import HOME_AP, UPDATE_MARK, lib_files, marked_image, node_config, partition, stage
from upynode_cli.romfs import build_image, image_files
from upynode_vboard import runner


def test_a_power_cut_while_the_image_is_written_leaves_it_to_the_next_boot(board_build, broker, make_vboard):
    vb = make_vboard(node_config(broker.port, interval_s=1), aps=HOME_AP)
    old, new = vb.rom_image, marked_image(board_build)
    writes = -(-len(new) // 512)
    # the first write, the last, and random ones between
    cuts = sorted({1, writes} | set(random.Random(19).sample(range(2, writes), 4)))
    for n, cut in enumerate(cuts):
        with open(os.path.join(vb.board, "romfs.new"), "wb") as f:
            f.write(new)
        if n:  # the new image is in place since the last round: back to the old one
            runner.write_romfs(vb.state_dir, old)
        vb.world(rom_cut_at=cut)
        vb.lines.clear()
        vb.start()
        vb.wait_for(r"^vrom: power cut", timeout=60)
        vb.stop()
        assert partition(vb)[:len(new)] != new  # torn: neither image
        assert open(os.path.join(vb.board, "romfs.old"), "rb").read() == old  # kept before the erase
        assert os.path.exists(os.path.join(vb.board, "romfs.new"))
        # power back: the boot writes it again, restarts, and the node runs from it
        vb.world(rom_cut_at=0)
        vb.lines.clear()
        boots = vb.boots
        vb.start()
        vb.wait_for(r"^update: the new ROMFS image \(%d B\) is written" % len(new), timeout=60)
        vb.wait_for(r"^\d+\.2: .* -> mqtt sent", timeout=60)
        vb.stop()
        assert vb.boots == boots + 2, "cut at write %d of %d: %s" % (cut, writes, vb.output()[-2000:])
        assert partition(vb)[:len(new)] == new
        assert UPDATE_MARK in image_files(partition(vb))
        files = os.listdir(vb.board)
        assert "romfs.new" not in files and "romfs.writing" not in files
        # the old image kept is the one that ran, not the torn partition
        assert open(os.path.join(vb.board, "romfs.old"), "rb").read() == old
        assert "Traceback" not in vb.output()


def test_a_new_image_that_delivers_stays(board_build, broker, make_vboard):
    vb = make_vboard(node_config(broker.port, interval_s=1), aps=HOME_AP)
    new = marked_image(board_build)
    stage(vb, new)
    with vb:
        vb.wait_for(r"^update: the new image is on trial, boot 1 of 3")
        vb.wait_for(r"^update: the new image delivered a reading: it stays")
        vb.wait_for(r"^\d+\.2: .* -> mqtt sent")
    files = os.listdir(vb.board)
    assert "romfs.trial" not in files and "romfs.rolledback" not in files
    assert partition(vb)[:len(new)] == new
    assert vb.boots == 2  # the update's restart, then the new image


def test_a_new_image_in_a_crash_loop_is_taken_back(board_build, broker, make_vboard):
    # The new image resets the node as soon as the loop's code loads (a
    # crash loop): after 3 boots on trial the previous image is written
    # back, and the node delivers from it.
    vb = make_vboard(node_config(broker.port, interval_s=1), aps=HOME_AP)
    old = vb.rom_image
    lib = lib_files(board_build)
    lib["lib/upynode/node.py"] = b"import machine\nprint('broken update: reset')\nmachine.reset()\n"  # .py before .mpy
    bad = build_image(lib)
    stage(vb, bad)
    with vb:
        vb.wait_for(r"^update: the new image delivered no reading in 3 boots: back to the previous one",
                    timeout=60)
        vb.wait_for(r"^\d+\.2: .* -> mqtt sent", timeout=60)
    out = vb.output()
    assert out.count("broken update: reset") == 3
    assert [ln for ln in vb.lines if ln.startswith("update: the new image is on trial")] == [
        "update: the new image is on trial, boot %d of 3 without a reading delivered" % i for i in (1, 2, 3)]
    assert partition(vb)[:len(old)] == old
    files = os.listdir(vb.board)
    assert "romfs.trial" not in files and "romfs.new" not in files
    with open(os.path.join(vb.board, "romfs.rolledback")) as f:
        assert "3 boots" in f.read()
    with open(os.path.join(vb.board, "romfs.old"), "rb") as f:
        assert f.read() == bad  # the one taken back, kept
    assert "on trial" not in out.split("back to the previous one")[-1]  # the old image is not on trial


def test_a_redeploy_with_nothing_changed_sends_under_3_kb_and_writes_no_flash(board_build, broker, make_vboard):
    # issue 19: a no-change ROMFS redeploy sent the whole 53 KB image. Now
    # the board hashes its partition and walks its lib/ itself: the second
    # of two deploys in a row to the running node, over WebREPL, stays
    # under 3 KB up (make bench row 7 measures the same) and writes nothing.
    from helpers import cli, deploy_summary
    from upynode_vboard import faults
    from upynode_vboard.services import free_port
    port = free_port()
    vb = make_vboard(node_config(broker.port), heapsize=runner.GUARD_WEBREPL_HEAPSIZE, aps=HOME_AP,
                     webrepl_port=port)
    part = os.path.join(vb.state_dir, runner.ROMFS_FILE)
    with vb:
        vb.wait_for(r"^\d+\.1: ")
        for i in range(2):
            before = os.stat(part).st_mtime_ns
            with faults.CutLink(port) as link:
                r = cli("deploy", "--host", "127.0.0.1:%d" % link.port, "--build-dir", board_build, "--romfs",
                        password="s3cret")
            assert deploy_summary(r)[0] == 0 and "ROMFS image unchanged: not written" in r.stderr, r.stderr
            assert os.stat(part).st_mtime_ns == before
        assert link.up < 3 * 1024, (link.up, link.down)
    assert not {"romfs.new", "romfs.trial"} & set(os.listdir(vb.board))



def test_deploy_wait_says_whether_the_new_image_stayed_or_was_taken_back(board_build, broker, make_vboard,
                                                                          tmp_path):
    # deploy --host --wait resets the node and reads its update files over
    # WebREPL (its loop runs on): 0 once the new image delivered a reading;
    # 1, with the reason, when the node took it back.
    from helpers import cli, marked_build
    from upynode_vboard.services import free_port
    good = marked_build(board_build, tmp_path / "good")
    bad = marked_build(board_build, tmp_path / "bad")
    with open(os.path.join(bad, "lib/upynode/node.py"), "w") as f:  # .py before .mpy: a crash loop
        f.write("import machine\nprint('broken update: reset')\nmachine.reset()\n")
    port = free_port()
    vb = make_vboard(node_config(broker.port), heapsize=runner.GUARD_WEBREPL_HEAPSIZE, aps=HOME_AP,
                     webrepl_port=port)
    with vb:
        vb.wait_for(r"^\d+\.1: ")
        r = cli("deploy", "--host", "127.0.0.1:%d" % port, "--build-dir", good, "--wait", password="s3cret",
                timeout=300)
        assert r.returncode == 0, r.stderr
        assert r.stderr.strip().splitlines()[-1] == "upynode: the new image delivered a reading: it stays"
        kept = partition(vb)
        mark = len(vb.lines)
        r = cli("deploy", "--host", "127.0.0.1:%d" % port, "--build-dir", bad, "--wait", "--trial-s", "10",
                password="s3cret", timeout=300)
        assert r.returncode == 1, r.stderr
        # the reason names the build taken back (upynode build's id, lib/upynode/build.txt)
        bad_id = open(os.path.join(bad, "lib/upynode/build.txt")).read().strip()
        assert r.stderr.strip().splitlines()[-1] == (
            "upynode deploy: error: the update was taken back: the new image delivered no reading in 3 "
            "boots: back to the previous one (build %s taken back)" % bad_id)
        vb.wait_for(r"^\d+\.\d+: .* -> mqtt sent", timeout=60, start=mark)
    assert partition(vb) == kept


def test_a_fleet_is_updated_one_node_at_a_time_and_stops_at_the_first_rollback(board_build, broker,
                                                                                make_vboard, tmp_path):
    # deploy --host A --host B: A first; each waits for its verdict. An
    # update A takes back stops the run before B is touched; a good one
    # goes to both, with a line per node.
    from helpers import cli, marked_build
    from upynode_vboard.services import free_port
    good = marked_build(board_build, tmp_path / "good")
    bad = marked_build(board_build, tmp_path / "bad")
    with open(os.path.join(bad, "lib/upynode/node.py"), "w") as f:  # .py before .mpy: a crash loop
        f.write("import machine\nprint('broken update: reset')\nmachine.reset()\n")
    nodes = []
    for _ in range(2):
        port = free_port()
        vb = make_vboard(node_config(broker.port), heapsize=runner.GUARD_WEBREPL_HEAPSIZE, aps=HOME_AP,
                         webrepl_port=port)
        nodes.append((vb, "127.0.0.1:%d" % port))
    (vb_a, a), (vb_b, b) = nodes
    hosts = tmp_path / "nodes.txt"
    hosts.write_text("# the fleet\n%s\n%s  # the second\n" % (a, b))
    with vb_a, vb_b:
        for vb, _ in nodes:
            vb.wait_for(r"^\d+\.1: ")
        before_b = partition(vb_b)
        r = cli("deploy", "--hosts", hosts, "--build-dir", bad, "--trial-s", "10", password="s3cret", timeout=300)
        assert r.returncode == 1, r.stderr
        err = r.stderr.strip().splitlines()
        assert "upynode: %s: FAILED: the update was taken back: the new image delivered no reading in 3 boots: " \
               "back to the previous one (build %s taken back)" % (a, open(os.path.join(bad, "lib/upynode/build.txt"))
                                                                   .read().strip()) in err
        assert "upynode: %s: not tried" % b in err
        assert err[-1] == "upynode deploy: error: stopped at %s: 0 of 2 nodes updated" % a
        assert partition(vb_b) == before_b
        r = cli("deploy", "--host", a, "--host", b, "--build-dir", good, password="s3cret", timeout=300)
        assert r.returncode == 0, r.stderr
        lines = r.stderr.strip().splitlines()
        assert [ln for ln in lines if ln.endswith(": ok")] == ["upynode: %s: ok" % a, "upynode: %s: ok" % b]
        assert lines[-1] == "upynode: all 2 nodes updated"
    assert partition(vb_a) == partition(vb_b) != before_b


def test_a_sleeping_node_is_held_awake_for_its_update(board_build, broker, make_vboard, tmp_path):
    # deploy --wait-awake: the retained <base>/<node>/awake keeps a
    # deep-sleep node up at its next timer wake (sleep.wake), the deploy
    # goes through its WebREPL, and the message is cleared: later wakes
    # sleep again.
    import json

    from helpers import cli, marked_build
    from upynode_vboard.mqttwatch import Watch
    from upynode_vboard.services import free_port
    other = marked_build(board_build, tmp_path / "other")
    port = free_port()
    cfg = node_config(broker.port, sleep="deep", interval_s=20, awake_max_s=10, node_id="attic",
                      led={"mode": "off"})
    cfg_file = tmp_path / "config.json"
    cfg_file.write_text(json.dumps(cfg))
    vb = make_vboard(cfg, heapsize=runner.GUARD_WEBREPL_HEAPSIZE, aps=HOME_AP, webrepl_port=port)
    with vb:
        vb.wait_for(r"^\[vboard: deep sleep \d+ ms\]$", timeout=90)  # past the power-on's WebREPL window
        mark = len(vb.lines)
        r = cli("deploy", "--host", "127.0.0.1:%d" % port, "--build-dir", other, "--config", cfg_file,
                "--wait-awake", "60", "--wait", password="s3cret", timeout=300)
        assert r.returncode == 0, r.stderr
        assert "upynode: attic is awake (home/attic/awake cleared: later wakes sleep on)" in r.stderr
        assert r.stderr.strip().splitlines()[-1] == "upynode: the new image delivered a reading: it stays"
        vb.wait_for(r"^sleep: asked to stay awake 60 s: WebREPL is open till then", start=mark)
        # the update's boots, then sleep again, and timer wakes that do not stay up
        n = len(vb.lines)
        vb.wait_for(r"^\[vboard: deep sleep \d+ ms\]$", timeout=90, start=n)
        vb.wait_for(r"^\[vboard: deep sleep \d+ ms\]$", timeout=30, start=len(vb.lines))
    assert partition(vb)[:len(build_image(lib_files(other)))] == build_image(lib_files(other))
    assert vb.output().count("asked to stay awake") == 1
    w = Watch(broker.port, ("home/attic/awake",))
    try:
        time.sleep(1)
        assert [p for p, _ in w.on("home/attic/awake")] in ([], [b""])  # no retained request left
    finally:
        w.close()
