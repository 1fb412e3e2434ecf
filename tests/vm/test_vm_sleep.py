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
