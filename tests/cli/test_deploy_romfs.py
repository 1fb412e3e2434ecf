"""upynode deploy (ROMFS by default, --romfs to insist, --files for .mpy
files) onto the virtual serial board (upynode_vboard.vserial)
whose firmware has a ROMFS partition (world "romfs_kb": fakehw/_vrom.py,
vfs.rom_ioctl as the ESP8266 port answers it, the partition a file in the
state folder): the image written through mpremote's own `romfs deploy`
code, the node then booted from it against a broker; the fallback on a
board without ROMFS; an image too big for the partition."""
import json
import os

import pytest

from helpers import HOME_AP, NODE_ID, cli, deploy_summary, node_config, one_line_error
from test_cli_deploy import device_files, make_build
from upynode_cli.cmd_deploy import local_files
from upynode_cli.romfs import build_image, image_files
from upynode_vboard import runner
from upynode_vboard.vserial import VirtualSerial

pytestmark = pytest.mark.vm

STATE = "home/%s/state" % NODE_ID


def serial_board(tmp_path, romfs_kb=None, files=None):
    board, state = tmp_path / "device", tmp_path / "state"
    board.mkdir()
    state.mkdir()
    world = {"aps": HOME_AP}
    if romfs_kb:
        world["romfs_kb"] = romfs_kb
    (state / "world.json").write_text(json.dumps(world))
    for p, data in (files or {}).items():
        (board / p).parent.mkdir(parents=True, exist_ok=True)
        (board / p).write_bytes(data)
    return VirtualSerial(board, state_dir=state)


def partition(tmp_path):
    try:
        return (tmp_path / "state" / runner.ROMFS_FILE).read_bytes()
    except OSError:
        return None


def test_deploy_romfs_then_boot_from_it(tmp_path, board_build, broker, watch):
    built = local_files(board_build)
    lib = {p: d for p, d in built.items() if p.startswith("lib/")}
    # an earlier file deploy left lib/ on the board, and a file of the user's
    old = dict(lib, **{"lib/mine.py": b"X = 1\n"})
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(node_config(broker.port)))
    with serial_board(tmp_path, runner.ROMFS_KB, old) as v:
        r = cli("deploy", "--port", v.device, "--build-dir", board_build, "--romfs", "--config", cfg)
        sent, unchanged, removed = deploy_summary(r)
    # issue 19: the image is staged as a file (sent in chunks, checked on the
    # board), not written into the partition the running firmware uses
    assert "ROMFS image staged as romfs.new" in r.stderr and "lib/ in ROMFS" in r.stderr
    # boot.py, main.py, update.py, config.json, config.ok, discovery.bin; the
    # /lib copies stay until the image is in place
    assert (sent, removed) == (6, 0)
    image = build_image(built)
    assert sorted(image_files(image)) == sorted(lib)
    on_board = device_files(v.board)
    assert on_board["romfs.new"] == image and partition(tmp_path) is None
    assert sorted(p for p in on_board if not p.startswith("lib/")) == [
        "boot.py", "config.json", "config.ok", "discovery.bin", "main.py", "romfs.new", "romfs.trial", "update.py"]
    assert on_board["romfs.trial"] == b"0 600"  # on trial once written, until it delivers (10 min a boot)

    # the next boot writes it into the partition before anything runs from
    # there, restarts, mounts it; the node runs from /rom and delivers
    vb = runner.VBoard(v.board, tmp_path / "state")
    vb.write_file("main.py", "import upynode.node as n\nprint('from', n.__file__)\n"
                  + built["main.py"].decode())
    with vb:
        vb.wait_for(r"^from /rom/lib/upynode/node\.mpy")
        watch.wait(lambda m: sum(t == STATE for t, _, _ in m) >= 2, 30)
        vb.wait_for("announced")
    assert "Traceback" not in vb.output()
    assert "update: the new ROMFS image (%d B) is written" % len(image) in vb.output()
    part = partition(tmp_path)
    assert part[:len(image)] == image  # byte for byte
    assert "romfs.new" not in device_files(v.board) and "romfs.writing" not in device_files(v.board)
    # it delivered: no longer on trial
    assert "update: the new image delivered a reading: it stays" in vb.output()
    assert "romfs.trial" not in device_files(v.board)
    # the update's restart only: what deploy installed is what the boot
    # would have built (config.ok, discovery.bin), no restart for it
    assert vb.boots == 2 and "restarting to run it" not in vb.output()

    # deployed again: the partition holds the image now; the /lib copies go
    vb3 = VirtualSerial(v.board, state_dir=tmp_path / "state")
    with vb3:
        r = cli("deploy", "--port", vb3.device, "--build-dir", board_build, "--romfs")
        assert deploy_summary(r)[2] == len(lib) and "ROMFS image unchanged" in r.stderr
    assert [p for p in device_files(v.board) if p.startswith("lib/")] == ["lib/mine.py"]

    # a file deploy afterwards: the image would shadow the files, so it is emptied
    vb2 = VirtualSerial(v.board, state_dir=tmp_path / "state")
    with vb2:
        r = cli("deploy", "--port", vb2.device, "--build-dir", board_build, "--files")
        assert deploy_summary(r)[0] == len(lib)  # (main.py: the deploy before put it back)
    assert "ROMFS image emptied" in r.stderr
    assert image_files(partition(tmp_path)) == []


def test_a_redeploy_with_nothing_changed_writes_no_flash(tmp_path):
    # issue 19: nothing to send, nothing sent. The partition's hash is taken
    # on the board first: an image it holds already is neither staged nor
    # written again (wear, and a window in which the node has no firmware).
    # A changed module is staged, once.
    v1, v2 = make_build(tmp_path / "v1"), make_build(tmp_path / "v2", version=2)
    part = tmp_path / "state" / runner.ROMFS_FILE
    v = serial_board(tmp_path, runner.ROMFS_KB)
    runner.write_romfs(tmp_path / "state", build_image(local_files(v1)))  # v1 in place, running from /rom
    with v:
        before = part.stat().st_mtime_ns, part.read_bytes()
        r = cli("deploy", "--port", v.device, "--build-dir", v1, "--romfs")
        assert deploy_summary(r)[0] == 2  # boot.py, main.py
        assert "ROMFS image unchanged: not written" in r.stderr and "staged" not in r.stderr
        assert "lib/ in ROMFS" in r.stderr and "unchanged)" in r.stderr
        assert (part.stat().st_mtime_ns, part.read_bytes()) == before
        assert "romfs.new" not in device_files(v.board)
        r = cli("deploy", "--port", v.device, "--build-dir", v2, "--romfs")
        assert deploy_summary(r)[0] == 1  # main.py; lib/ goes into the image
        assert "ROMFS image staged as romfs.new" in r.stderr and "unchanged:" not in r.stderr
        r = cli("deploy", "--port", v.device, "--build-dir", v2, "--romfs")
        assert deploy_summary(r)[0] == 0 and "ROMFS image staged already" in r.stderr
    assert device_files(v.board)["romfs.new"] == build_image(local_files(v2))
    # the next boot writes it; until then the running image stays in the
    # partition (a staged deploy once emptied it: no firmware, no rollback)
    assert (part.stat().st_mtime_ns, part.read_bytes()) == before


@pytest.mark.parametrize("flags", [(), ("--romfs",)], ids=["default", "--romfs"])
def test_no_romfs_partition_falls_back_to_mpy_files(tmp_path, flags):
    build = make_build(tmp_path / "build")
    with serial_board(tmp_path) as v:
        r = cli("deploy", "--port", v.device, "--build-dir", build, *flags)
        assert deploy_summary(r)[:2] == (5, 0)
    assert r.returncode == 0
    note = [ln for ln in r.stderr.splitlines() if "ROMFS" in ln]
    assert len(note) == 1 and "FLASH_2M_ROMFS" in note[0] and "1.25" in note[0] and ".mpy files" in note[0]
    assert device_files(v.board) == device_files(build)
    assert partition(tmp_path) is None


@pytest.mark.parametrize("where", ["deployed", "on the board"])
def test_a_config_that_would_not_fit_from_mpy_files_is_refused(tmp_path, where):
    # issue 18: no silent fallback that then runs out of memory in the wall.
    # The config deployed (--config), else the board's own, is judged by the
    # bench's figures (upynode_cli/fit.py); --files deploys anyway.
    build = make_build(tmp_path / "build")
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(node_config(1883)))
    old = {"main.py": b"# old\n"}
    if where == "on the board":
        old["config.json"] = cfg.read_bytes()
    with serial_board(tmp_path, files=old) as v:
        args = ["--config", cfg] if where == "deployed" else []
        r = cli("deploy", "--port", v.device, "--build-dir", build, *args)
        from upynode_cli import fit
        err = one_line_error(r, "no ROMFS partition", "about %d KB" % -(-fit.MQTT_NODE // 1024), "32 KB",
                             "FLASH_2M_ROMFS", "--files",
                             "nothing was changed")
        assert "Traceback" not in err and "deploying .mpy files instead" not in r.stderr
        assert device_files(v.board) == old
        r = cli("deploy", "--port", v.device, "--build-dir", build, "--files", *args)
        assert r.returncode == 0 and deploy_summary(r)[0] >= 5


def test_an_image_bigger_than_the_partition_changes_nothing(tmp_path):
    build = make_build(tmp_path / "build")
    with serial_board(tmp_path, romfs_kb=4, files={"main.py": b"# old\n"}) as v:
        r = cli("deploy", "--port", v.device, "--build-dir", build, "--romfs", "--reset")
    err = one_line_error(r, "ROMFS image", "bigger than", "4096 B", "nothing was changed")
    assert "Traceback" not in err
    assert device_files(v.board) == {"main.py": b"# old\n"}
    assert partition(tmp_path) is None


def test_by_default_an_image_too_big_for_the_partition_leaves_mpy_files(tmp_path):
    build = make_build(tmp_path / "build")
    with serial_board(tmp_path, romfs_kb=4, files={"main.py": b"# old\n"}) as v:
        r = cli("deploy", "--port", v.device, "--build-dir", build)
    assert r.returncode == 0 and deploy_summary(r)[:2] == (5, 0)
    note = [ln for ln in r.stderr.splitlines() if "ROMFS" in ln]
    assert len(note) == 1 and "bigger than" in note[0] and "4096 B" in note[0] and ".mpy files" in note[0]
    assert device_files(v.board) == device_files(build)
    assert partition(tmp_path) is None


def test_files_and_romfs_do_not_mix(tmp_path):
    r = cli("deploy", "--port", "/dev/null", "--romfs", "--files")
    assert r.returncode == 2 and "--files" in r.stderr and "--romfs" in r.stderr


def test_romfs_and_source_do_not_mix(tmp_path):
    one_line_error(cli("deploy", "--port", "/dev/null", "--romfs", "--source"), "--romfs", "--source")


def test_deploy_romfs_over_webrepl(webrepl_node, tmp_path):
    """The same through WebREPL served from the VM: mpremote's romfs code on
    our WebREPL transport."""
    build = make_build(tmp_path / "build")
    n = webrepl_node()
    n.stop()  # again, now with a ROMFS partition
    n.vb.world(romfs_kb=runner.ROMFS_KB)
    n.vb.lines.clear()
    n.start()
    r = cli("deploy", "--host", n.host, "--build-dir", build, password="s3cret")  # ROMFS: the default
    assert deploy_summary(r)[:2] == (2, 0), r.stderr  # boot.py, main.py; lib/ in the image
    assert "ROMFS image staged as romfs.new" in r.stderr  # for the board's next boot to write
    image = build_image(local_files(build))
    assert sorted(device_files(n.dir)) == ["boot.py", "main.py", "romfs.new", "romfs.trial"]
    assert device_files(n.dir)["romfs.new"] == image


def test_deploy_wait_over_usb_reads_the_verdict_from_the_console(tmp_path, board_build, broker):
    # --wait over --port: the reset, then the node's console until the new
    # image delivered a reading (exit 0), the serial port open throughout
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(node_config(broker.port)))
    with serial_board(tmp_path, runner.ROMFS_KB) as v:
        r = cli("deploy", "--port", v.device, "--build-dir", board_build, "--config", cfg, "--wait", timeout=300)
    assert r.returncode == 0, r.stderr
    assert "\n  update: the new image is on trial, boot 1 of 3" in r.stderr  # console lines it went by
    assert r.stderr.strip().splitlines()[-1] == "upynode: the new image delivered a reading: it stays"
    assert "romfs.trial" not in device_files(v.board)
