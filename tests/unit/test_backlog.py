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


def flip(offset):
    data = bytearray(open("backlog_mqtt.q", "rb").read())
    data[offset] ^= 0x40
    open("backlog_mqtt.q", "wb").write(bytes(data))


def offset_of(i, first=1):
    """Where record i starts in a fresh queue of records first, first + 1, ..."""
    return 4 + sum(4 + len(rec(j)) for j in range(first, i))


def test_a_flipped_byte_mid_queue_costs_only_its_record_and_is_counted(flash):
    q = Backlog("mqtt", 4096)
    for i in range(1, 21):
        q.put(rec(i))
    flip(offset_of(5) + 10)  # inside record 5's data: its CRC fails
    lines = []
    q = Backlog("mqtt", 4096, log=lines.append)
    assert q.peek(100) == [rec(i) for i in range(1, 21) if i != 5]
    assert len(q) == 19 and q.dropped == 1
    assert "backlog mqtt: corrupt record(s) skipped: 1 counted in drop" in lines
    assert not any("torn" in line for line in lines)
    # rewritten clean: the next boot finds nothing wrong
    lines.clear()
    assert Backlog("mqtt", 4096, log=lines.append).peek(100) == [rec(i) for i in range(1, 21) if i != 5]
    assert lines == []


@pytest.mark.parametrize("where", [0, 1, 2, 3])
def test_a_flipped_header_byte_mid_queue_costs_only_its_record(flash, where):
    q = Backlog("mqtt", 4096)
    for i in range(1, 21):
        q.put(rec(i))
    flip(offset_of(5) + where)  # record 5's length or CRC
    q = Backlog("mqtt", 4096, log=lambda *a: None)
    assert q.peek(100) == [rec(i) for i in range(1, 21) if i != 5]
    assert q.dropped == 1


def test_a_byte_that_goes_bad_while_the_queue_is_open_never_stalls_it(flash):
    lines = []
    q = Backlog("mqtt", 4096, log=lines.append)
    for i in range(1, 21):
        q.put(rec(i))
    flip(offset_of(1) + 10)  # the oldest, about to be replayed
    assert q.peek(3) == [rec(2), rec(3), rec(4)]
    assert len(q) == 19 and q.dropped == 1
    assert "backlog mqtt: corrupt record(s) skipped: 1 counted in drop" in lines
    q.pop(3)
    assert q.peek(100) == [rec(i) for i in range(5, 21)]
    flip(offset_of(10) + 10)  # one further on: peek steps over it
    assert q.peek(100) == [rec(i) for i in range(5, 21) if i != 10]
    q.pop(5)  # 5..9 acknowledged: record 10's bytes come first now
    assert q.peek(100) == [rec(i) for i in range(11, 21)]
    assert len(q) == 10 and q.dropped == 2
    q.put(rec(21))
    assert Backlog("mqtt", 4096).peek(100) == [rec(i) for i in range(11, 22)]


def test_a_whole_last_record_that_fails_its_crc_is_called_corrupt_not_torn(flash):
    q = Backlog("mqtt", 4096)
    for i in range(1, 4):
        q.put(rec(i))
    flip(offset_of(3) + 10)
    lines = []
    q = Backlog("mqtt", 4096, log=lines.append)
    assert q.peek(10) == [rec(1), rec(2)] and q.dropped == 1
    assert lines == ["backlog mqtt: a corrupt record at the end: 1 counted in drop"]


def test_a_full_flash_refuses_the_append_and_keeps_the_queue(flash, monkeypatch):
    q = Backlog("mqtt", 4096)
    for i in range(1, 4):
        q.put(rec(i))
    before = open("backlog_mqtt.q", "rb").read()
    st = os.statvfs(".")
    full = os.statvfs_result((4096, 4096, 100, 1, 1) + tuple(st)[5:])  # one block left
    with monkeypatch.context() as m:
        m.setattr(backlog.os, "statvfs", lambda p: full, raising=False)
        with pytest.raises(OSError) as e:
            q.put(rec(4))
    assert e.value.args[0] == 28
    assert open("backlog_mqtt.q", "rb").read() == before
    q.put(rec(5))  # freed
    assert Backlog("mqtt", 4096).peek(10) == [rec(1), rec(2), rec(3), rec(5)]


def test_an_append_cut_short_by_the_flash_leaves_the_records_around_it(flash, monkeypatch):
    q = Backlog("mqtt", 4096, log=lambda *a: None)
    for i in range(1, 4):
        q.put(rec(i))
    real_open = open

    class Short:
        # the file system wrote part of the record, then ran out of room
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

        def write(self, b):
            self.f.write(b[:7])
            raise OSError(28)

    with monkeypatch.context() as m:
        m.setattr("builtins.open", lambda p, mode="r": Short(real_open(p, mode)) if mode == "ab"
                  else real_open(p, mode))
        with pytest.raises(OSError):
            q.put(rec(4))
    q.put(rec(5))
    assert q.peek(10) == [rec(1), rec(2), rec(3), rec(5)]
    q.pop(3)
    assert q.peek(10) == [rec(5)]  # the cut bytes are stepped over
    q = Backlog("mqtt", 4096, log=lambda *a: None)
    assert q.peek(10) == [rec(5)]
