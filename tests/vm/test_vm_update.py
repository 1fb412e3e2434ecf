"""A staged ROMFS update (issue 19): `upynode deploy` leaves the new image
as romfs.new; the next boot writes it into the partition (update.py, run by
boot.py before anything is imported from /rom), keeps the old image as
romfs.old and restarts into the new one. Power is cut in the middle of the
write at several points (fakehw/_vrom.py: the world's "rom_cut_at" stops the
n-th flash write halfway and hangs, and the test powers the board off): the
next boot writes it again, and the node delivers from the new image."""
import os
import random

from helpers import HOME_AP, node_config
from upynode_cli.cmd_deploy import local_files
from upynode_cli.romfs import build_image, image_files
from upynode_vboard import runner

MARK = "lib/upynode/update-test.txt"  # what tells the new image from the old


def new_image(board_build):
    lib = {p: d for p, d in local_files(board_build).items() if p.startswith("lib/")}
    lib[MARK] = b"the new image\n" * 40
    return build_image(lib)


def partition(vb):
    with open(os.path.join(vb.state_dir, runner.ROMFS_FILE), "rb") as f:
        return f.read()


def test_a_power_cut_while_the_image_is_written_leaves_it_to_the_next_boot(board_build, broker, make_vboard):
    vb = make_vboard(node_config(broker.port, interval_s=1), aps=HOME_AP)
    old, new = vb.rom_image, new_image(board_build)
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
        assert MARK in image_files(partition(vb))
        files = os.listdir(vb.board)
        assert "romfs.new" not in files and "romfs.writing" not in files
        # the old image kept is the one that ran, not the torn partition
        assert open(os.path.join(vb.board, "romfs.old"), "rb").read() == old
        assert "Traceback" not in vb.output()
