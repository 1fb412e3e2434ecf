"""The node booted from ROMFS on the virtual board (runner: VBoard(rom=True),
fakehw/_vrom.py): lib/ in the partition's image mounted at /rom, not on the
filesystem, and readings delivered to a real broker."""
import json
import os
import re

from helpers import HOME_AP, NODE_ID, node_config
from upynode_cli.romfs import HEADER, image_files
from upynode_vboard import brokers, runner
from upynode_vboard.mqttwatch import Watch

STATE = "home/%s/state" % NODE_ID


def test_the_node_runs_from_romfs_and_delivers(broker, watch, make_vboard):
    cfg = node_config(broker.port)
    vb = make_vboard(cfg, rom=True, aps=HOME_AP)
    assert not os.path.exists(os.path.join(vb.board, "lib"))  # only in the image
    assert "lib/upynode/node.mpy" in image_files(vb.rom_image)
    # Its heap: raised by the image and what the fake vfs.rom_ioctl keeps
    argv, _ = runner.vm_argv(vb.board, runner.HEAPSIZE, vb.state_dir)
    kb = (len(vb.rom_image) + runner.ROMFS_BOOT_BYTES + 1023) // 1024  # no stand-in on a VBoard
    assert argv[2] == "heapsize=%dK" % (int(runner.HEAPSIZE[:-1]) + runner.NAMES_HEAP_KB + runner.FS_HEAP_KB + kb)
    vb.write_file("main.py", "import sys\nprint('path', sys.path)\n"
                  "import upynode.node as n\nprint('from', n.__file__)\n" + open(os.path.join(vb.board, "main.py")).read())
    with vb:
        vb.wait_for(r"^from /rom/lib/upynode/node\.mpy")
        path = eval(vb.wait_for(r"^path ")[5:])
        # the chip's order: '' first, /rom and /rom/lib before /lib (boot.py
        # moves .frozen last)
        lib = os.path.join(vb.board, "lib")
        assert path[0] == "" and path.index("/rom") + 1 == path.index("/rom/lib") == path.index(lib) - 1
        watch.wait(lambda m: sum(t == STATE for t, _, _ in m) >= 3, 30)
    got = [json.loads(p) for p, _ in watch.on(STATE)]
    assert [r["seq"] for r in got[:3]] == [1, 2, 3]
    assert got[0]["light_raw"] == 512
    out = vb.output()
    assert "Traceback" not in out and "out of memory" not in out.lower()


def test_an_erased_partition_boots_without_rom(make_vboard):
    """No valid image (erased flash): nothing at /rom, as on the chip."""
    vb = make_vboard(rom=True, aps=HOME_AP)
    with open(os.path.join(vb.state_dir, runner.ROMFS_FILE), "wb") as f:
        f.write(b"\xff" * 4096)
    assert runner.romfs_image_len(vb.state_dir) == 0
    vb.write_file("main.py", "import os, vfs\nprint('rom', 'rom' in os.listdir('/'), hasattr(vfs, 'rom_ioctl'))\n")
    vb.write_file("boot.py", "")
    with vb:
        assert vb.wait_for(r"^rom ") == "rom False False"  # no stand-in for rom_ioctl on a VBoard
    assert HEADER == b"\xd2\xcd\x31"


def test_the_node_fits_the_chips_heap_from_romfs(make_vboard):
    """The node as a Home Assistant user configures it (the bench's: ADC,
    MCP9808 and DHT22, MQTT with discovery and its diagnostics, heartbeat
    LED, the offline queue), lib/ in ROMFS, in the heap the VM gives a chip
    with 32 KB free less the headroom the suite guards (runner.GUARD_HEAPSIZE,
    derived in runner.py): it boots, announces, announces everything again
    when Home Assistant restarts, and delivers every reading, without
    running out of memory."""
    with brokers.Broker() as broker:  # retained discovery of other tests must not count
        cfg = node_config(broker.port, sensors=[{"type": "adc", "quantity": "light"}, {"type": "mcp9808"},
                                                {"type": "dht22", "prefix": "room_"}],
                          led={"mode": "heartbeat"})
        vb = make_vboard(cfg, heapsize=runner.GUARD_HEAPSIZE, rom=True, aps=HOME_AP)
        w = Watch(broker.port, ("homeassistant/+/%s/+/config" % NODE_ID, STATE))
        try:
            with vb:
                # light, light_raw, temperature, room_temperature, room_humidity,
                # and the diagnostics rssi, heap, up, q, reset (no switch: heartbeat)
                entities = 10
                configs = lambda: [t for t, _, _ in w.messages if t.endswith("/config")]  # noqa: E731
                w.wait(lambda m: len(configs()) == entities and len(w.on(STATE)) >= 2, timeout=30)
                w.publish("homeassistant/status", "online")  # Home Assistant restarted
                # at most one announcement per 30 s (mqtt._AGAIN_MS): this one waits its turn
                w.wait(lambda m: len(configs()) == 2 * entities, timeout=45)
                n = len(w.on(STATE))
                w.wait(lambda m: len(w.on(STATE)) >= n + 5, timeout=20)
        finally:
            w.close()
    out = vb.output()
    got = [json.loads(p) for p, _ in w.on(STATE)]
    # every reading taken was delivered (a slow cycle may leave a gap in seq:
    # "not taken", never "queued" or "NOT SENT")
    taken = re.findall(r"^1\.(\d+): \{.*\} -> (.*)$", out, re.M)
    assert {r for _, r in taken} == {"mqtt sent"}, out
    seqs = [int(s) for s, _ in taken]
    n = min(len(got), len(seqs))  # the VM stopped: its last line may be unwritten
    assert n >= 5 and [r["seq"] for r in got][:n] == seqs[:n], out
    assert all({"light", "temperature", "room_temperature", "room_humidity"} <= set(r) for r in got)
    assert "Traceback" not in out and "out of memory" not in out.lower() and "not enough memory" not in out, out
