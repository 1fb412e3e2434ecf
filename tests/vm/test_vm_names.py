"""The interned-name budget (issue 18, item 5). MicroPython interns the
names a program brings in pools on the heap, and when the last is full
allocates one twice its size in one contiguous block (640 entries, ~4.5 KB
on a chip, at the 621st name): mid-run, in a fragmented heap, that block
may not be there. The bench's node and full configurations, from ROMFS,
booted through cycle 3 exactly as `make bench` counts them
(bench.loop_names: n_qstr after cycle 3 less the VM's names before
boot.py, which the chip keeps in flash), must leave at least
bench.NAMES_MIN_MARGIN names before the next pool step (bench.pool_steps)."""
import pytest

from upynode_vboard import bench
from upynode_vboard.receiver_process import ReceiverProcess


@pytest.fixture(scope="module")
def receiver(tmp_path_factory):
    rx = ReceiverProcess(str(tmp_path_factory.mktemp("rx") / "receiver.sqlite3"), bench.API_KEY).start()
    yield rx
    rx.stop()


@pytest.fixture(scope="module")
def shim(tmp_path_factory):
    return bench.clock_shim(str(tmp_path_factory.mktemp("shim")))


def test_pool_steps_double_from_20():
    # py/qstr.c: the ROM pool before the heap's first has alloc 10 (also
    # the frozen pool of ESP8266_GENERIC: min(its length, 10)), each new
    # pool twice the last: 20, 40, 80, ... names
    assert bench.pool_steps()[:6] == [20, 60, 140, 300, 620, 1260]
    assert bench.name_margin(400) == 220 and bench.name_margin(620) == 0 and bench.name_margin(621) == 639


@pytest.mark.parametrize("kind", ["node", "full"])
def test_the_loop_leaves_names_before_the_next_pool(kind, make_vboard, broker, receiver, shim):
    vb = make_vboard(rom=True, aps={bench.SSID: {"password": bench.WIFI_PASSWORD}})
    vb.write_config(bench.node_config(kind, broker.port, receiver.url if kind == "full" else ""))
    bench.announce_boot(shim, vb.board, state=vb.state_dir)  # builds discovery.bin, as the chip's first boot
    r = bench.loop_names(vb.board, vb.state_dir, shim=shim)
    assert r["error"] is None, r
    assert r["count"] > 100, r  # the firmware's own names were counted, not just the harness's
    assert r["margin"] >= bench.NAMES_MIN_MARGIN, (
        "%s: the loop interns %d names (boot.py to cycle 3, ROMFS), %d below the pool step at %d, where "
        "MicroPython allocates a new pool mid-run: keep at least %d names of margin (stages: %s)"
        % (kind, r["count"], r["margin"], r["next_step"], bench.NAMES_MIN_MARGIN, r["stages"]))
