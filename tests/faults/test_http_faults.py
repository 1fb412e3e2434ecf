"""The reference receiver (http.target "receiver", batches on POST
/api/readings) fails under a running node: down, then answering 500, then
back. The node keeps what was not acknowledged and replays it in batches;
the receiver ends up holding every reading, once."""
import json
import os
import time
import urllib.request

from conftest import assert_ok, fault_config
from helpers import HOME_AP, NODE_ID
from upynode_vboard import faults
from upynode_vboard.receiver_process import ReceiverProcess

KEY = "faults-key-51c9"


def test_receiver_down_then_500_then_back(make_vboard, fault_table, tmp_path):
    with ReceiverProcess(str(tmp_path / "readings.db"), KEY, log_path=str(tmp_path / "receiver.log")) as rcv:
        # the node's URL: a stand-in in front of the receiver that can be down or answer 500
        front = faults.FlakyHttp(KEY, upstream=rcv.url)
        cfg = fault_config(1, transports=["http"], mqtt={"host": ""},
                           http={"target": "receiver", "url": front.url, "api_key": KEY, "timeout_s": 2},
                           backlog={"max_kb": 8, "per_cycle": 5})
        vb = make_vboard(cfg, aps=HOME_AP)
        front.start()
        with vb:
            faults.wait_readings(vb, 3)
            front.stop()                       # down: nothing listens
            n = len(vb.lines)
            faults.wait_readings(vb, 8, start=n)
            front.start()
            front.mode = "500"                 # up, refusing
            m = len(vb.lines)
            faults.wait_readings(vb, 4, start=m)
            t_end = time.monotonic() + 30      # the node backs off: wait for a second refusal
            while front.refused < 2 and time.monotonic() < t_end:
                time.sleep(0.2)
            front.mode = "ok"                  # back
            made, got = faults.settle(vb, [front], "receiver", start=len(vb.lines))
        front.stop()
        with urllib.request.urlopen(rcv.url + "/api/held?node=" + NODE_ID) as r:
            held = json.load(r)["held"]
    row = fault_table.add(faults.row("HTTP receiver down, then 500s, then back", made, got,
                                     faults.drops_reported(vb.lines, "receiver"), console=vb.lines))
    assert_ok(row, vb)
    assert front.refused >= 2, "the node retried the refusing receiver %d time(s)" % front.refused
    assert not front.bad, front.bad
    out = faults.outcomes(vb.lines, "receiver")
    assert [out[k] for k in sorted(out)[:3]] == ["sent"] * 3
    assert sum(1 for v in out.values() if v == "queued") >= 12
    # the reference receiver holds each reading once, whatever came twice
    assert sorted(map(tuple, held)) == sorted(made)


def test_a_reading_refused_for_good_among_good_ones(make_vboard, fault_table):
    # The receiver refuses one live reading and one queued one for good
    # (400 with its reason): each is dropped, counted and logged with the
    # reason; every other reading is delivered, and the queue never stalls
    # on the refused one.
    front = faults.FlakyHttp(KEY)
    # a password in the URL (with a ":" in it): the node's lines show "node:***@",
    # and make_vboard's console check fails the test if "Pa55:w0rd" is printed
    url = front.url.replace("http://", "http://node:Pa55:w0rd@")
    cfg = fault_config(1, transports=["http"], mqtt={"host": ""},
                       http={"target": "receiver", "url": url, "api_key": KEY, "timeout_s": 2},
                       backlog={"max_kb": 8, "per_cycle": 5})
    vb = make_vboard(cfg, aps=HOME_AP)
    front.refuse = {(1, 4), (1, 9)}
    front.start()
    with vb:
        faults.wait_readings(vb, 6)
        front.stop()  # down: readings 7.. queue, 9 among them
        faults.wait_readings(vb, 6, start=len(vb.lines))
        front.start()
        made, got = faults.settle(vb, [front], "receiver", start=len(vb.lines))
    front.stop()
    row = fault_table.add(faults.row("a reading refused for good (400), live and queued, among good ones", made,
                                     got, faults.drops_reported(vb.lines, "receiver"), console=vb.lines))
    assert_ok(row, vb)
    out = faults.outcomes(vb.lines, "receiver")
    assert out[(1, 4)].startswith("REFUSED (HTTP 400") and "refused by the test" in out[(1, 4)]
    assert out[(1, 9)] == "queued"
    assert any("refused for good (HTTP 400" in ln and "1 counted in drop" in ln for ln in vb.lines)
    assert sorted(k for k in made if k not in {(r["boot"], r["seq"]) for r in got}) == [(1, 4), (1, 9)]
    assert any("receiver http://node:***@127.0.0.1:" in ln for ln in vb.lines)


def test_boot_n_erased_with_the_receivers_database_kept(make_vboard, fault_table, tmp_path):
    # A re-flash erases the node's files (boot.n: boots count from 1 again)
    # while the receiver keeps its database. The receiver keyed readings on
    # (node, boot, seq) and answered the second life's 200 "duplicates":
    # every reading silently dropped. With the epoch each life is its own.
    with ReceiverProcess(str(tmp_path / "readings.db"), KEY, log_path=str(tmp_path / "receiver.log")) as rcv:
        front = faults.FlakyHttp(KEY, upstream=rcv.url)
        front.start()
        cfg = fault_config(1, transports=["http"], mqtt={"host": ""},
                           http={"target": "receiver", "url": front.url, "api_key": KEY, "timeout_s": 2})
        vb = make_vboard(cfg, aps=HOME_AP)
        lives = []
        for life in (1, 2):
            with vb:
                faults.wait_readings(vb, 6, start=len(vb.lines))
                start = len(vb.lines)
                made, _ = faults.settle(vb, [front], "receiver", start=start)
            lives.append(made)
            for name in os.listdir(vb.board):  # the erase: everything but the firmware and config
                if name in ("boot.n",) or name.startswith("backlog_"):
                    os.remove(os.path.join(vb.board, name))
            vb.lines.append("[vboard: flash erased]")
        front.stop()
        with urllib.request.urlopen(rcv.url + "/api/readings?node=%s&limit=10000" % NODE_ID) as r:
            rows = json.load(r)
    eps = sorted({r["ep"] for r in rows})
    assert len(eps) == 2, eps  # two lives, two epochs
    # the two lives' readings, told apart by their epoch, as (life, boot, seq)
    produced = {}
    for life, made in enumerate(lives, 1):
        for (boot, seq), rec in made.items():
            produced[(life * 1000 + boot, seq)] = {"boot": life * 1000 + boot, "seq": seq}
    held = {(r["ep"], r["boot"], r["seq"]) for r in rows}
    delivered = [{"boot": (eps.index(ep) + 1) * 1000 + boot, "seq": seq} for ep, boot, seq in held]
    row = fault_table.add(faults.row("boot.n erased (re-flash), the receiver's database kept", produced, delivered,
                                     faults.drops_reported(vb.lines), console=vb.lines))
    assert_ok(row, vb)
    assert min(lives[1]) == (1, 1) and min(lives[0]) == (1, 1)  # the same (boot, seq) in both lives
