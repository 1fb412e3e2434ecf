"""The node's batch format on POST /api/readings (issue 7: no reading lost): one row per
quantity of each record, duplicates dropped on (node, boot, seq, quantity), uptimes turned
into dates, what GET /api/held answers, and an older database file brought up to date."""
import sqlite3
import time

import pytest

from upynode_receiver import receiver, store

KEY = "batch-key"


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "readings.sqlite3"


@pytest.fixture
def client(db_path):
    return receiver.create_app(db_path, [KEY]).test_client()


def post(client, body):
    return client.post("/api/readings", json=body, headers={"X-Api-Key": KEY})


def record(boot=3, seq=1, ts=None, **values):
    """A record as the node sends it; temperature and humidity unless values are given."""
    rec = {"boot": boot, "seq": seq, "ts": int(time.time()) - 60 if ts is None else ts}
    rec.update(values or {"temperature": 21.5, "humidity": 40})
    return rec


def batch(*records, node="attic", up=500, units=None):
    body = {"node": node, "up": up, "units": {"temperature": "°C", "humidity": "%"} if units is None
            else units, "readings": list(records)}
    if up is None:
        del body["up"]
    return body


def rows(db_path, node="attic"):
    with sqlite3.connect(db_path) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(
            "SELECT node, quantity, value, unit, ts, boot, seq FROM readings WHERE node = ?"
            " ORDER BY boot, seq, quantity", (node,))]


def count(db_path):
    with sqlite3.connect(db_path) as conn:
        return conn.execute("SELECT COUNT(*) FROM readings").fetchone()[0]


def test_each_record_is_a_row_per_quantity_with_its_unit(client, db_path):
    ts = int(time.time()) - 120
    response = post(client, batch(record(seq=1, ts=ts), record(seq=2, ts=ts + 60, temperature=22.0,
                                                               light=512)))
    assert (response.status_code, response.json) == (201, {"stored": 4, "duplicates": 0})
    assert rows(db_path) == [
        {"node": "attic", "quantity": "humidity", "value": 40, "unit": "%", "ts": ts, "boot": 3, "seq": 1},
        {"node": "attic", "quantity": "temperature", "value": 21.5, "unit": "°C", "ts": ts, "boot": 3,
         "seq": 1},
        {"node": "attic", "quantity": "light", "value": 512, "unit": "", "ts": ts + 60, "boot": 3,
         "seq": 2},
        {"node": "attic", "quantity": "temperature", "value": 22.0, "unit": "°C", "ts": ts + 60,
         "boot": 3, "seq": 2},
    ]
    # GET /api/readings says which reading each row belongs to.
    got = client.get("/api/readings?node=attic&quantity=light").json
    assert [(r["boot"], r["seq"], r["value"]) for r in got] == [(3, 2, 512)]


def test_replayed_records_are_duplicates_and_a_new_boot_is_new(client, db_path):
    assert post(client, batch(record(seq=1), record(seq=2))).json == {"stored": 4, "duplicates": 0}
    # The node lost the answer and sends the same records again, with one new one.
    response = post(client, batch(record(seq=2), record(seq=3)))
    assert (response.status_code, response.json) == (201, {"stored": 2, "duplicates": 2})
    response = post(client, batch(record(seq=1), record(seq=2), record(seq=3)))
    assert (response.status_code, response.json) == (200, {"stored": 0, "duplicates": 6})
    # seq starts again at 1 after a reboot: boot tells those readings apart.
    assert post(client, batch(record(boot=4, seq=1))).json == {"stored": 2, "duplicates": 0}
    # Same boot and seq from another node is another reading.
    assert post(client, batch(record(seq=1), node="cellar")).json == {"stored": 2, "duplicates": 0}
    assert client.get("/api/held?node=attic").json == \
        {"node": "attic", "held": [[3, 1], [3, 2], [3, 3], [4, 1]]}
    assert client.get("/api/held?node=cellar").json["held"] == [[3, 1]]
    assert client.get("/api/held?node=nobody").json["held"] == []
    assert store.held(db_path, "attic") == [[3, 1], [3, 2], [3, 3], [4, 1]]


def test_a_reading_taken_without_clock_is_dated_from_the_nodes_uptime(client, db_path):
    before = time.time()
    body = batch({"boot": 1, "seq": 1, "up": 440, "temperature": 1},     # 60 s before sending
                 {"boot": 1, "seq": 2, "up": 500, "temperature": 2},     # as it was sent
                 {"boot": 1, "seq": 3, "up": 900, "temperature": 3},     # later than "now": another boot
                 up=500)
    assert post(client, body).status_code == 201
    after = time.time()
    dates = {r["seq"]: r["ts"] for r in rows(db_path)}
    assert before - 60 <= dates[1] <= after - 60
    assert before <= dates[2] <= after and before <= dates[3] <= after
    # Without the node's uptime now, such a reading is dated when it arrived.
    assert post(client, batch({"boot": 2, "seq": 1, "up": 5, "temperature": 4}, up=None)).status_code == 201
    [late] = [r for r in rows(db_path) if r["boot"] == 2]
    assert before <= late["ts"] <= time.time()


def test_diagnostics_and_sensor_errors_are_not_stored_as_quantities(client, db_path):
    rec = record(seq=1, temperature=20.5, heap=21000, rssi=-67, q=3, drop=1, reset=1)
    rec["err"] = {"dht": "ETIMEDOUT"}
    assert post(client, batch(rec)).json == {"stored": 1, "duplicates": 0}
    assert [r["quantity"] for r in rows(db_path)] == ["temperature"]
    # Every sensor failed: a valid record with nothing to store.
    only_err = {"boot": 3, "seq": 2, "ts": int(time.time()), "err": {"dht": "ETIMEDOUT"}}
    response = post(client, batch(only_err))
    assert (response.status_code, response.json) == (200, {"stored": 0, "duplicates": 0})


def test_the_per_quantity_body_still_works_beside_batches(client, db_path):
    reading = {"node": "attic", "quantity": "temperature", "value": 19, "unit": "°C", "seq": 1}
    assert post(client, [reading, dict(reading, value=20)]).json == {"stored": 1, "duplicates": 1}
    # A per-quantity body has no boot: its seq 1 is not the batch's (boot 3, seq 1).
    assert post(client, batch(record(seq=1))).json == {"stored": 2, "duplicates": 0}
    assert client.get("/api/held?node=attic").json["held"] == [[None, 1], [3, 1]]


@pytest.mark.parametrize("body, message", [
    ({"node": "attic", "readings": [record()], "colour": "red"}, "colour is not a batch field"),
    ({"readings": [record()]}, "node is missing"),
    (batch(record(), node="a b"), "node must match"),
    (batch(record(), up=-1), "up must be the node's seconds since boot"),
    (batch(record(), up="5"), "up must be a finite number"),
    (batch(record(), units=["°C"]), "units must be a JSON object"),
    (batch(record(), units={"temperature": 5}), "units.temperature must be printable text"),
    (batch(record(), units={"1x": "°C"}), "units: \"1x\" must match"),
    ({"node": "attic", "readings": []}, "readings must be a list of 1..500 records"),
    ({"node": "attic", "readings": {"boot": 1}}, "readings must be a list"),
    ({"node": "attic", "readings": [record()] * 501}, "readings must be a list of 1..500 records"),
    (batch(record(), "x"), "readings[1] must be a JSON object"),
    (batch(record(), {"seq": 2, "ts": 1_700_000_000, "t": 1}), "readings[1].boot is missing"),
    (batch(record(), {"boot": 1, "ts": 1_700_000_000, "t": 1}), "readings[1].seq is missing"),
    (batch(record(boot=-1)), "readings[0].boot must be an integer 0..2**63-1"),
    (batch(record(boot=True)), "readings[0].boot must be an integer"),
    (batch(record(seq=1.5)), "readings[0].seq must be an integer"),
    (batch(record(seq=2**63)), "readings[0].seq must be an integer"),
    (batch({"boot": 1, "seq": 1, "temperature": 1}), "readings[0].ts or up is missing"),
    (batch(record(ts=800_000_000)), "readings[0].ts must be unix seconds"),
    (batch({"boot": 1, "seq": 1, "up": -5, "t": 1}), "readings[0].up must be seconds since boot"),
    (batch(record(temperature="21")), "readings[0].temperature must be a finite number"),
    (batch(record(temperature=None)), "readings[0].temperature must be a finite number"),
    (batch(record(temperature=False)), "readings[0].temperature must be a finite number"),
    (batch(record(**{"bad key": 1})), '"bad key" is neither a record field'),
    (batch(dict(record(), err="broken")), "readings[0].err must be a JSON object"),
])
def test_a_bad_batch_is_400_naming_the_field_and_stores_nothing(client, db_path, body, message):
    # readings[1] cases: a good record comes first, and is not stored either.
    response = post(client, body)
    assert response.status_code == 400
    assert message in response.json["error"]
    assert count(db_path) == 0


@pytest.mark.parametrize("query, message", [("", "node must match"), ("?node=a%20b", "node must match"),
                                            ("?node=a&boot=1", "unknown query parameter 'boot'")])
def test_held_query_names_what_is_wrong(client, query, message):
    response = client.get("/api/held" + query)
    assert response.status_code == 400
    assert message in response.json["error"]


# The schema of the receiver before boot counters: unique (node, seq).
VERSION_1_SCHEMA = """
CREATE TABLE readings (
    id INTEGER PRIMARY KEY, node TEXT NOT NULL, quantity TEXT NOT NULL, field INTEGER,
    value REAL NOT NULL, unit TEXT NOT NULL DEFAULT '', ts REAL NOT NULL, seq INTEGER,
    received REAL NOT NULL);
CREATE UNIQUE INDEX readings_node_seq ON readings (node, seq);
CREATE INDEX readings_ts ON readings (ts);
CREATE INDEX readings_node_quantity_ts ON readings (node, quantity, ts);
"""


VERSION_2_SCHEMA = """
CREATE TABLE readings (
    id INTEGER PRIMARY KEY, node TEXT NOT NULL, quantity TEXT NOT NULL, field INTEGER,
    value REAL NOT NULL, unit TEXT NOT NULL DEFAULT '', ts REAL NOT NULL, seq INTEGER,
    received REAL NOT NULL, boot INTEGER);
CREATE UNIQUE INDEX readings_reading ON readings (node, ifnull(boot, -1), seq, quantity);
CREATE INDEX readings_ts ON readings (ts);
CREATE INDEX readings_node_quantity_ts ON readings (node, quantity, ts);
PRAGMA user_version = 2;
"""


def test_a_version_1_database_keeps_its_rows_and_gets_the_new_key(db_path):
    with sqlite3.connect(db_path) as conn:
        conn.executescript(VERSION_1_SCHEMA)
        conn.executemany("INSERT INTO readings (node, quantity, value, unit, ts, seq, received)"
                         " VALUES (?, ?, ?, ?, ?, ?, ?)",
                         [("attic", "temperature", 20, "°C", 1_700_000_000, 1, 1_700_000_001),
                          ("attic", "humidity", 40, "%", 1_700_000_000, None, 1_700_000_001)])
    conn.close()
    client = receiver.create_app(db_path, [KEY]).test_client()
    receiver.create_app(db_path, [KEY])        # a second start finds the file up to date
    got = client.get("/api/readings?node=attic").json
    assert [(r["quantity"], r["value"], r["boot"], r["seq"]) for r in got] == \
        [("temperature", 20, None, 1), ("humidity", 40, None, None)]
    # The old rows still deduplicate the body that wrote them, and batches store beside them.
    old = {"node": "attic", "quantity": "temperature", "value": 20, "unit": "°C", "seq": 1}
    assert post(client, old).json == {"stored": 0, "duplicates": 1}
    assert post(client, batch(record(seq=1))).json == {"stored": 2, "duplicates": 0}
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "readings_node_seq" not in indexes and "readings_reading" not in indexes
    assert "readings_identity" in indexes


def test_a_version_2_database_keeps_its_rows_and_a_re_flashed_node_is_stored_beside_them(db_path):
    # Version 2 keyed on (node, boot, seq, quantity): a node whose boot.n was
    # erased sent boot 1 again, and every reading got 200 "duplicates"
    with sqlite3.connect(db_path) as conn:  # version 2, with the node's first life
        conn.executescript(VERSION_2_SCHEMA)
        conn.executemany("INSERT INTO readings (node, quantity, value, unit, ts, boot, seq, received)"
                         " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         [("attic", q, v, "", time.time() - 60, 1, 1, time.time()) for q, v in
                          (("temperature", 21.5), ("humidity", 40))])
    conn.close()
    client = receiver.create_app(db_path, [KEY]).test_client()  # the new receiver starts on it
    assert post(client, batch(record(boot=1, seq=1))).json == {"stored": 0, "duplicates": 2}  # still itself
    second_life = dict(record(boot=1, seq=1, temperature=19.0, humidity=41), ep=123456789)
    assert post(client, batch(second_life)).json == {"stored": 2, "duplicates": 0}
    assert post(client, batch(second_life)).json == {"stored": 0, "duplicates": 2}  # its own replay
    got = client.get("/api/readings?node=attic&quantity=temperature").json
    assert {(r["ep"], r["boot"], r["seq"], r["value"]) for r in got} == {(None, 1, 1, 21.5), (123456789, 1, 1, 19.0)}


def test_a_key_bound_to_nodes_writes_only_their_readings(db_path):
    # Node B's key once stored -40 degC under node A's name, and node A's
    # real batch then got 200 with 0 stored (duplicates).
    client = receiver.create_app(db_path, [("key-a", ["attic"]), ("key-b", ["cellar"]), "key-any"]).test_client()

    def post_as(key, body):
        return client.post("/api/readings", json=body, headers={"X-Api-Key": key})
    forged = post_as("key-b", batch(record(seq=1, temperature=-40), node="attic"))
    assert forged.status_code == 403 and "attic" in forged.get_json()["error"]
    assert post_as("key-a", batch(record(seq=1, temperature=21.5), node="attic")).get_json() == \
        {"stored": 1, "duplicates": 0}
    assert post_as("key-b", batch(record(seq=1), node="cellar")).status_code == 201
    assert post_as("key-any", batch(record(seq=2), node="attic")).status_code == 201  # unbound: as before
    rows = client.get("/api/readings?node=attic&quantity=temperature").get_json()
    assert sorted(r["value"] for r in rows) == [21.5, 21.5]
    # the tutorial's URL too: its node is the MAC
    r = client.get("/update/API_key=key-a/mac=5c:cf:7f:00:00:01/field=1/data=20")
    assert r.status_code == 403


def test_keys_bound_to_nodes_come_from_the_keys_file_and_the_command(tmp_path):
    import json
    f = tmp_path / "keys.json"
    f.write_text(json.dumps({"api_keys": {"key-a": ["attic", "garage"], "key-any": None}}))
    assert receiver.load_api_keys(str(f), env={}, bound=["key-c=cellar, porch", "key-d"]) == \
        [("key-a", ["attic", "garage"]), "key-any", ("key-c", ["cellar", "porch"]), "key-d"]
    assert receiver.unbound_keys(receiver.load_api_keys(str(f), env={})) == 1
    for bad in ({"api_keys": {"key-a": "attic"}}, {"api_keys": {"": ["attic"]}}):
        f.write_text(json.dumps(bad))
        with pytest.raises(ValueError):
            receiver.load_api_keys(str(f), env={})
    with pytest.raises(ValueError):
        receiver.load_api_keys(None, env={}, bound=["key-e="])


def test_the_command_warns_of_keys_any_node_may_use(tmp_path):
    from upynode_vboard.receiver_process import ReceiverProcess
    with ReceiverProcess(str(tmp_path / "w.sqlite3"), "unbound-key", args=["--key", "bound-key=attic"]) as rx:
        import urllib.request
        body = b'{"node":"cellar","up":5,"readings":[{"boot":1,"seq":1,"up":5,"t":1}]}'
        req = urllib.request.Request(rx.url + "/api/readings", data=body, method="POST",
                                     headers={"X-Api-Key": "bound-key"})
        try:
            urllib.request.urlopen(req, timeout=10)
            status = 200
        except urllib.error.HTTPError as e:
            status = e.code
        assert status == 403
        assert "warning: 1 API key(s) not bound to node names" in rx.log_text()
