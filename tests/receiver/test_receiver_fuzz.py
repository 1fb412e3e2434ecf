"""Fuzzing every endpoint of the reference receiver, and its MQTT message handler, with
Hypothesis: whatever arrives, the answer is never a 500 (only the statuses the API
documents, each error a JSON {"error": ...}), a rejected request stores nothing, and an
accepted node batch sent again stores nothing new. Kept to a few seconds (max_examples)
so that `make test` stays fast; UPYNODE_FUZZ_EXAMPLES=2000 hunts longer. No example database
is written (database=None)."""
import json
import os
import sqlite3
import time
import urllib.parse

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from werkzeug.exceptions import HTTPException

from upynode_receiver import receiver
from upynode_receiver.mqtt import MqttIngest
from upynode_receiver.validate import NAME_RE, QUANTITY_RE, QUERY_KEYS

KEY = "fuzz-key"
DOCUMENTED = {200, 201, 400, 401, 404, 405, 413, 429}
FUZZ = settings(max_examples=int(os.environ.get("UPYNODE_FUZZ_EXAMPLES", 100)), deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def db_path(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz") / "readings.sqlite3"


@pytest.fixture(scope="module")
def client(db_path):
    # No rate limit: the fuzzer sends thousands of requests with one key.
    return receiver.create_app(db_path, [KEY], rate_limit=0).test_client()


def count(db_path):
    with sqlite3.connect(db_path) as conn:
        return conn.execute("SELECT COUNT(*) FROM readings").fetchone()[0]


def check_answer(response):
    # --hypothesis-show-statistics counts the answers: the fuzzer must reach the accepting
    # paths too, not only the 400s.
    event(f"HTTP {response.status_code}")
    assert response.status_code in DOCUMENTED, (response.status_code, response.get_data(as_text=True)[:500])
    if response.status_code >= 400:
        assert response.is_json and isinstance(response.json["error"], str) and response.json["error"]


# --- what may arrive -------------------------------------------------------------------------

huge_ints = st.integers(min_value=-10**400, max_value=10**400)
json_scalars = (st.none() | st.booleans() | st.integers() | huge_ints
                | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20))
json_values = st.recursive(json_scalars,
                           lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                           max_leaves=20)
names = st.from_regex(NAME_RE, fullmatch=True) | st.text(max_size=70)
quantities = st.from_regex(QUANTITY_RE, fullmatch=True) | st.text(max_size=12)
numbers = st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False) | json_scalars
counters = st.integers(0, 2**20) | st.integers(-2, 2**64) | json_scalars
dates = st.integers(1_000_000_000, 1_900_000_000) | st.floats(0, 4e9) | json_scalars
uptimes = st.integers(0, 10**6) | st.floats(-1, 2**33) | json_scalars


@st.composite
def records(draw):
    """A node's record: mostly well-formed, with any field possibly wrong or missing."""
    rec = {}
    for key, values in (("boot", counters), ("seq", counters)):
        if draw(st.integers(0, 9)):
            rec[key] = draw(values)
    rec[draw(st.sampled_from(["ts", "up", "ts", "none"]))] = draw(dates | uptimes)
    rec.pop("none", None)
    rec.update(draw(st.dictionaries(quantities, numbers, max_size=4)))
    if draw(st.booleans()):
        rec.update(draw(st.fixed_dictionaries({}, optional={
            "err": st.dictionaries(st.text(max_size=8), st.text(max_size=20)) | json_values,
            "heap": json_scalars, "rssi": json_scalars, "q": json_scalars, "reset": json_scalars})))
    return rec


NOW = int(time.time())
# Well-formed records too, so that the accepting paths (and duplicates) are reached often.
good_records = st.builds(
    lambda head, values, ts_or_up: {**head, **values, **ts_or_up},
    st.fixed_dictionaries({"boot": st.integers(0, 3), "seq": st.integers(1, 30)}),
    st.dictionaries(st.from_regex(QUANTITY_RE, fullmatch=True), st.integers(-50, 50) | st.floats(-1e6, 1e6),
                    min_size=1, max_size=3),
    st.fixed_dictionaries({"ts": st.integers(NOW - 30 * 86400, NOW)}) | st.fixed_dictionaries(
        {"up": st.integers(0, 10**5)}))


@st.composite
def batches(draw):
    body = {"node": draw(names),
            "readings": draw(st.lists(records() | good_records, max_size=5)
                             | st.lists(good_records, min_size=1, max_size=5) | json_values)}
    if draw(st.booleans()):
        body["up"] = draw(uptimes)
    if draw(st.booleans()):
        body["units"] = draw(st.dictionaries(quantities, st.text(max_size=18), max_size=3) | json_values)
    if not draw(st.integers(0, 9)):
        body[draw(st.text(max_size=8))] = draw(json_scalars)
    return body


per_quantity = st.fixed_dictionaries(
    {"node": names, "quantity": quantities, "value": numbers, "unit": st.text(max_size=18)},
    optional={"ts": dates, "seq": counters, "extra": json_scalars})
node_names = st.from_regex(NAME_RE, fullmatch=True)
good_batches = st.fixed_dictionaries(
    {"node": node_names, "readings": st.lists(good_records, min_size=1, max_size=5)},
    optional={"up": st.integers(0, 10**5), "units": st.dictionaries(st.from_regex(QUANTITY_RE, fullmatch=True),
                                                                    st.sampled_from(["°C", "%", "lx", ""]))})
bodies = good_batches | batches() | per_quantity | st.lists(per_quantity, max_size=4) | json_values
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
keys = st.one_of(st.just(KEY), st.just(KEY), st.just(KEY), header_text)


# --- POST /api/readings ------------------------------------------------------------------------

@FUZZ
@given(body=bodies, key=keys)
def test_post_json_never_fails_and_stores_nothing_it_refuses(client, db_path, body, key):
    before = count(db_path)
    response = client.post("/api/readings", data=json.dumps(body), headers={"X-Api-Key": key},
                           content_type="application/json")
    check_answer(response)
    added = count(db_path) - before
    if response.status_code >= 400:
        assert added == 0
        return
    assert response.json["stored"] == added
    if isinstance(body, dict) and "readings" in body:
        # Every row of a node's batch has (node, boot, seq): sending it again stores nothing.
        again = client.post("/api/readings", data=json.dumps(body), headers={"X-Api-Key": key})
        assert again.status_code == 200 and again.json["stored"] == 0
        assert count(db_path) - before == added


raw_bodies = (st.binary(max_size=300)
              | st.builds(lambda opener, n, tail: opener * n + tail,
                          st.sampled_from([b"[", b"{\"a\":", b"[{\"node\":"]), st.integers(0, 40000),
                          st.binary(max_size=20))
              | st.builds(lambda digits: b'{"node":"a","quantity":"t","unit":"","value":' + digits + b"}",
                          st.integers(300, 5000).map(lambda n: b"9" * n)))


@FUZZ
@given(raw=raw_bodies, content_type=st.sampled_from(["application/json", "text/plain", ""]))
def test_post_raw_bytes_never_fails(client, db_path, raw, content_type):
    before = count(db_path)
    response = client.post("/api/readings", data=raw, headers={"X-Api-Key": KEY}, content_type=content_type)
    check_answer(response)
    if response.status_code >= 400:
        assert count(db_path) == before


# --- the tutorial URL ----------------------------------------------------------------------

segments = st.text(max_size=40)


@FUZZ
@given(key=st.just(KEY) | segments, mac=st.sampled_from(["5ccf7f010203", "5C:CF:7F:01:02:03"]) | segments,
       field=st.integers(0, 100).map(str) | segments,
       data=st.floats(allow_nan=True, allow_infinity=True).map(repr) | st.integers().map(str) | segments,
       tail=st.just("") | st.text(max_size=20))
def test_tutorial_url_never_fails(client, db_path, key, mac, field, data, tail):
    quote = lambda text: urllib.parse.quote(text, safe="")      # noqa: E731
    path = f"/update/API_key={quote(key)}/mac={quote(mac)}/field={quote(field)}/data={quote(data)}"
    before = count(db_path)
    response = client.get(path + (f"/{quote(tail)}" if tail else ""))
    check_answer(response)
    assert count(db_path) - before == (1 if response.status_code == 200 else 0)


# --- reading back --------------------------------------------------------------------------

queries = st.dictionaries(st.sampled_from(QUERY_KEYS + ("x", "boot")), st.text(max_size=30), max_size=4)


@FUZZ
@given(query=queries, path=st.sampled_from(["/api/readings", "/api/held", "/", "/vendor/chart.umd.min.js",
                                            "/api/nothing"]))
def test_reading_back_never_fails(client, query, path):
    response = client.get(path + "?" + urllib.parse.urlencode(query))
    check_answer(response)
    if path == "/api/readings" and response.status_code == 200:
        assert isinstance(response.json, list)


@settings(max_examples=25, deadline=None, database=None)
@given(body=batches())
def test_the_page_renders_whatever_was_stored(client, body):
    client.post("/api/readings", json=body, headers={"X-Api-Key": KEY})
    response = client.get("/")
    assert response.status_code == 200
    assert client.get("/api/readings").status_code == 200


# --- the MQTT subscriber's messages --------------------------------------------------------

@pytest.fixture(scope="module")
def ingest(db_path):
    # Never started: handle() is what paho's thread calls for each message.
    return MqttIngest(db_path, "127.0.0.1", 1, base_topic="home", discovery_prefix="homeassistant")


mqtt_topics = (st.builds("home/{}/{}".format, node_names, st.sampled_from(["state", "backlog"]))
               | st.builds("home/{}/{}".format, names, st.sampled_from(["state", "backlog", "other"]))
               | st.builds("homeassistant/sensor/{}/{}/config".format, names, quantities))
mqtt_payloads = ((good_records | records()).map(lambda r: json.dumps(r).encode()) | json_values.map(lambda v: json.dumps(v).encode())
                 | raw_bodies)


@FUZZ
@given(topic=mqtt_topics, payload=mqtt_payloads)
def test_mqtt_messages_are_stored_or_refused_with_a_reason(ingest, db_path, topic, payload):
    before = count(db_path)
    try:
        stored, _ = ingest.handle(topic, payload)
    except HTTPException as exc:
        event("refused")
        assert exc.code == 400 and exc.description
        assert count(db_path) == before
    else:
        event(f"handled, {'rows stored' if stored else 'nothing new'}")
        assert count(db_path) - before == stored
