"""Deep sleep on the virtual board: machine.deepsleep() ends the VM, the
runner sleeps (scaled by the world's sleep_scale) and boots it again with
reset_cause() DEEPSLEEP_RESET and RTC memory kept; lib/upynode/sleep.py
naps, chains sleeps longer than the chip's longest, and wakes with its
state intact."""
import json

from upynode_vboard.runner import VBoard

COUNT_WAKES = """
import machine
rtc = machine.RTC()
n = int(rtc.memory() or b'0')
print('boot', machine.reset_cause(), n)
if n < 3:
    rtc.memory(b'%d' % (n + 1))
    machine.deepsleep(60000)
"""


def test_deepsleep_wakes_the_board_with_rtc_memory_kept(tmp_path):
    board = tmp_path / "board"
    board.mkdir()
    (board / "main.py").write_text(COUNT_WAKES)
    vb = VBoard(board, tmp_path / "vboard")
    vb.world(sleep_scale=0.001)  # 60 s -> 60 ms
    with vb:
        vb.wait_for(r"boot 5 3", timeout=30)
        vb.wait_for(r"VM exited with status 0", timeout=10)
    lines = [ln for ln in vb.output().splitlines() if ln.startswith("boot")]
    assert lines == ["boot 0 0", "boot 5 1", "boot 5 2", "boot 5 3"]
    assert [w["sleep_ms"] for w in vb.wakes] == [60000] * 3
    assert all(w["awake_ms"] > 0 for w in vb.wakes)


def test_a_power_cycle_forgets_rtc_memory(tmp_path):
    board = tmp_path / "board"
    board.mkdir()
    (board / "main.py").write_text("import machine\nprint('mem', machine.RTC().memory())\n"
                                   "machine.RTC().memory(b'x')\n")
    vb = VBoard(board, tmp_path / "vboard")
    for _ in range(2):
        start = len(vb.lines)
        with vb:
            vb.wait_for(r"VM exited", timeout=30, start=start)
    assert vb.output().count("mem b''") == 2, vb.output()


def test_deepsleep_without_a_time_sleeps_until_reset(tmp_path):
    board = tmp_path / "board"
    board.mkdir()
    (board / "main.py").write_text("import machine\nprint('awake')\nmachine.deepsleep()\n")
    with VBoard(board, tmp_path / "vboard") as vb:
        vb.wait_for(r"deep sleep until reset", timeout=30)
    assert vb.output().count("awake") == 1
    assert [w["sleep_ms"] for w in vb.wakes] == [None]


NAPPER = """
import machine
from upynode import sleep, rtcmem
sleep.chained()
m = rtcmem.load() or rtcmem.empty()
print('wake', m['wakes'], m['seq'], machine.reset_cause(), sleep.wall(m) is not None)
if m['wakes'] < 3:
    m['seq'] += 10
    sleep.nap(%d, sleep.awake_ms(), print, m, ts=1795600000)
"""


def napper_board(tmp_path, interval_s):
    import shutil
    from upynode_cli.project import LIB
    board = tmp_path / "board"
    (board / "lib" / "upynode").mkdir(parents=True)
    for name in ("__init__.py", "rtcmem.py", "sleep.py"):
        shutil.copy(LIB / "upynode" / name, board / "lib" / "upynode" / name)
    (board / "main.py").write_text(NAPPER % interval_s)
    return board


def test_nap_wakes_again_with_the_state_intact(tmp_path):
    vb = VBoard(napper_board(tmp_path, 60), tmp_path / "vboard")
    vb.world(sleep_scale=0.001)
    with vb:
        vb.wait_for(r"wake 3 30 5 True", timeout=30)
        vb.wait_for(r"VM exited with status 0", timeout=10)
    wakes = [ln for ln in vb.output().splitlines() if ln.startswith("wake")]
    assert wakes == ["wake 0 0 0 False", "wake 1 10 5 True", "wake 2 20 5 True", "wake 3 30 5 True"]
    # each nap: what was left of the 60 s after that wake's awake time
    assert len(vb.wakes) == 3 and all(55000 < w["sleep_ms"] <= 60000 for w in vb.wakes)


def test_a_long_interval_chains_sleeps_and_its_links_start_nothing(tmp_path):
    # 2 h: two links of at most sleep.MAX_MS; a link's wake goes back to
    # sleep before the firmware prints (or joins WiFi)
    vb = VBoard(napper_board(tmp_path, 7200), tmp_path / "vboard")
    vb.world(sleep_scale=0.00001)
    with vb:
        vb.wait_for(r"wake 3 30 5 True", timeout=60)
        vb.wait_for(r"VM exited with status 0", timeout=10)
    wakes = [ln for ln in vb.output().splitlines() if ln.startswith("wake")]
    assert wakes == ["wake 0 0 0 False", "wake 1 10 5 True", "wake 2 20 5 True", "wake 3 30 5 True"]
    links = [w["sleep_ms"] for w in vb.wakes]
    assert links[0::2] == [3600000] * 3 and all(3500000 < ms <= 3600000 for ms in links[1::2])
    assert vb.boots == 7


def test_the_board_keeps_the_chips_clock_when_the_world_asks(tmp_path):
    # world chip_clock: the fake time (fakehw/clock): epoch 2000, and the
    # clock reads 2000-01-01 after power-on, until NTP sets it
    board = tmp_path / "board"
    board.mkdir()
    (board / "main.py").write_text("import time\nprint('clock', time.gmtime(0)[0], time.time() < 60)\n")
    vb = VBoard(board, tmp_path / "vboard")
    vb.world(chip_clock=True)
    with vb:
        vb.wait_for(r"VM exited", timeout=30)
    assert "clock 2000 True" in vb.output()
