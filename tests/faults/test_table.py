"""The suite's yardstick: the console parser and the row every scenario is
judged by, and the exit status `make faults` takes from the table."""
import json
import subprocess
import sys

from upynode_vboard import faults

CONSOLE = [
    "wifi: connected to \"home\"",
    '1.1: {"boot": 1, "seq": 1, "up": 3, "temperature": 21.5, "heap": 20000, "reset": 0} -> mqtt sent',
    '1.2: {"boot": 1, "seq": 2, "up": 4, "temperature": 21.5, "heap": 19000} -> mqtt queued',
    "backlog mqtt: full: dropped 2 oldest, 2 since boot",
    '1.3: {"boot": 1, "seq": 3, "up": 5, "temperature": 21.6, "heap": 19000, "q": 1} -> mqtt queued, receiver sent',
    "backlog mqtt: full: dropped 1 oldest, 3 since boot",
    "1.4-5: not taken: the cycle before overran its interval",
    "[vboard: reset]",
    "backlog mqtt: full: dropped 1 oldest, 1 since boot",
    '2.2: {"boot": 2, "seq": 2, "ts": 1700000001, "temperature": 21.7} -> mqtt LOST (flash full), receiver REFUSED (HTTP 400 {"error": "no"})',
    "backlog receiver: refused for good (HTTP 400 {\"error\": \"no\"}): 1 counted in drop",
    "backlog mqtt: corrupt record(s) skipped: 2 counted in drop",
    '2.1: {"boot": 2, "seq": 1, "ts": 1700000000, "temperature": 21.7, "err": {"dht11": "timeout"}} -> mqtt sent',
]


def rec(boot, seq, **kv):
    return dict({"boot": boot, "seq": seq}, **kv)


def test_the_console_gives_the_readings_without_diagnostics_and_the_drops():
    p = faults.produced(CONSOLE)
    assert sorted(p) == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2)]
    assert p[(1, 1)] == {"boot": 1, "seq": 1, "up": 3, "temperature": 21.5}
    assert p[(2, 1)]["err"] == {"dht11": "timeout"}
    # a full queue's 4, a reading not queued, a corrupt record skipped twice; the receiver's refusals
    assert faults.drops_reported(CONSOLE) == 4 + 1 + 2 + 2
    assert faults.drops_reported(CONSOLE, "mqtt") == 4 + 1 + 2
    assert faults.drops_reported(CONSOLE, "receiver") == 2
    assert faults.outcomes(CONSOLE, "receiver") == {(1, 3): "sent", (2, 2): 'REFUSED (HTTP 400 {"error": "no"})'}
    assert faults.outcomes(CONSOLE, "mqtt")[(1, 2)] == "queued"
    assert faults.not_taken(CONSOLE) == 2


def test_a_row_dedupes_and_is_ok_only_when_every_reading_arrived():
    p = {(1, s): rec(1, s, up=s, temperature=20.0) for s in (1, 2, 3)}
    # the live message carries diagnostics; the replayed one does not
    got = [dict(p[(1, 1)], heap=1), p[(1, 2)], p[(1, 2)], p[(1, 3)]]
    r = faults.row("all", p, got)
    assert (r["produced"], r["delivered"], r["duplicates dropped"], r["lost"], r["result"]) == (3, 3, 1, 0, "ok")

    r = faults.row("one lost", p, got[:2])
    assert (r["lost"], r["result"]) == (1, "LOST 1") and r["missing"] == [[1, 3]]
    assert faults.lost_beyond_allowed(r)

    r = faults.row("dropped and said so", p, got[:2], dropped=1)
    assert r["result"] == "ok"
    r = faults.row("said more than it lost", p, got, dropped=1)
    assert r["result"] == "FAIL"
    r = faults.row("power cut", p, got[:2], may_lose=1)
    assert r["result"] == "ok"

    r = faults.row("changed", p, got[:3] + [rec(1, 3, up=3, temperature=99.0)])
    assert r["result"] == "FAIL" and "other contents" in r["problems"][0]
    r = faults.row("invented", p, got + [rec(7, 1, up=1)])
    assert r["result"] == "FAIL" and "7.1" in r["problems"][0]


def test_the_table_exits_non_zero_when_a_scenario_lost_a_reading(tmp_path):
    t = faults.Table()
    p = {(1, 1): rec(1, 1), (1, 2): rec(1, 2)}
    t.add(faults.row("broker killed", p, list(p.values())))
    path = tmp_path / "faults.json"
    t.write(path)
    run = [sys.executable, "-m", "upynode_vboard.faults", str(path)]
    r = subprocess.run(run, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "broker killed" in r.stdout and "ok" in r.stdout

    t.add(faults.row("wifi down", p, [rec(1, 1)]))
    t.write(path)
    r = subprocess.run(run, capture_output=True, text=True)
    assert r.returncode == 1
    assert "LOST 1" in r.stdout and "1.2" in r.stdout
    assert "readings lost in: wifi down" in r.stderr
    assert json.loads(path.read_text())["rows"][0]["scenario"] == "broker killed"
