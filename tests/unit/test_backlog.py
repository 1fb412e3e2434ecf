"""The offline queue (lib/upynode/backlog.py) on the node's flash, here a
temporary folder: order, bounds, acknowledgement, and power cuts mid-write."""
import os

import pytest

from upynode import backlog
from upynode.backlog import Backlog


@pytest.fixture
def flash(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def rec(i):
    return b'{"boot":1,"seq":%d,"light":512}' % i


def test_records_come_back_oldest_first_and_survive_a_reboot(flash):
    q = Backlog("mqtt", 4096, log=lambda *a: None)
    for i in range(1, 6):
        q.put(rec(i))
    assert len(q) == 5
    assert q.peek(2) == [rec(1), rec(2)]
    q.pop(2)
    q = Backlog("mqtt", 4096, log=lambda *a: None)  # power cut, boot
    assert len(q) == 3
    assert q.peek(10) == [rec(3), rec(4), rec(5)]


def test_an_empty_queue_leaves_no_files(flash):
    q = Backlog("mqtt", 4096)
    assert os.listdir(flash) == []
    q.put(rec(1))
    q.pop(1)
    assert os.listdir(flash) == []
    assert len(Backlog("mqtt", 4096)) == 0


def test_a_full_queue_drops_the_oldest_and_counts_them(flash):
    lines = []
    q = Backlog("mqtt", 400, log=lines.append)
    for i in range(1, 41):
        q.put(rec(i))
    kept = q.peek(100)
    assert kept == [rec(i) for i in range(41 - len(kept), 41)]  # the newest, in order
    assert q.dropped == 40 - len(kept) > 0
    assert sum(len(r) + 4 for r in kept) <= 400
    assert "backlog mqtt: full: dropped 1 oldest, %d since boot" % q.dropped in lines
    # the drop survives a reboot: the dropped records do not come back
    assert Backlog("mqtt", 400).peek(100) == kept


@pytest.mark.parametrize("cut", range(1, len(rec(7)) + 4))
def test_a_record_torn_by_a_power_cut_is_dropped_and_the_others_kept(flash, cut):
    q = Backlog("mqtt", 4096)
    for i in range(1, 7):
        q.put(rec(i))
    q.pop(2)
    size = os.path.getsize("backlog_mqtt.q")
    q.put(rec(7))
    with open("backlog_mqtt.q", "r+b") as f:  # the cut: only `cut` bytes of record 7 reached flash
        f.truncate(size + cut)
    lines = []
    q = Backlog("mqtt", 4096, log=lines.append)
    assert q.peek(10) == [rec(i) for i in range(3, 7)]
    assert any("torn record" in line for line in lines)
    q.put(rec(8))  # and the queue goes on from there
    assert Backlog("mqtt", 4096).peek(10)[-1] == rec(8)


def test_a_corrupt_byte_inside_a_record_ends_the_queue_there(flash):
    q = Backlog("mqtt", 4096)
    for i in range(1, 4):
        q.put(rec(i))
    data = bytearray(open("backlog_mqtt.q", "rb").read())
    data[-3] ^= 0x40  # inside record 3's data: its CRC fails
    open("backlog_mqtt.q", "wb").write(bytes(data))
    assert Backlog("mqtt", 4096).peek(10) == [rec(1), rec(2)]


def test_acknowledging_rewrites_only_the_small_offset_file(flash, request):
    q = Backlog("mqtt", 100_000)
    for i in range(1, 101):
        q.put(rec(i))
    writes = request.getfixturevalue("flash_writes")
    q.pop(5)
    assert writes == ["backlog_mqtt.pos.tmp"]


def test_compaction_keeps_the_records_and_bounds_the_file(flash):
    q = Backlog("mqtt", 1000)
    seq = 0
    for _ in range(200):  # write 20 times the bound through the queue
        for _ in range(3):
            seq += 1
            q.put(rec(seq))
        q.pop(3)
        assert os.path.getsize("backlog_mqtt.q") <= 2 * 1000 if q.n else True
    for i in range(seq + 1, seq + 6):
        q.put(rec(i))
    assert Backlog("mqtt", 1000).peek(10) == [rec(i) for i in range(seq + 1, seq + 6)]


def test_a_cut_between_compaction_and_the_offset_file_starts_from_the_new_file(flash):
    q = Backlog("mqtt", 4096)
    for i in range(1, 6):
        q.put(rec(i))
    q.pop(2)  # .pos says: generation 1, after record 2
    pos = open("backlog_mqtt.pos").read()
    q._compact()  # copies records 3..5 into generation 2, then removes .pos
    open("backlog_mqtt.pos", "w").write(pos)  # as if the cut came before that removal
    assert Backlog("mqtt", 4096).peek(10) == [rec(3), rec(4), rec(5)]


def test_crc16_is_the_ccitt_false_check_value():
    assert backlog.crc16(b"123456789") == 0x29B1
