"""Tests of the reference receiver (upynode_receiver): Flask test client for the rules,
a real waitress process for HTTP, and headless Chromium for the page's charts.
Everything talks to 127.0.0.1 only."""
import json
import os
import re
import shutil
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from upynode_receiver import chartjs, receiver

KEY = "test-key-one"
OTHER_KEY = "test-key-two"
MAC = "5C:CF:7F:01:02:03"
NODE = "5c:cf:7f:01:02:03"      # how the receiver spells that mac


def tutorial_url(key=KEY, mac=MAC, field="1", data="21.5"):
    return f"/update/API_key={key}/mac={mac}/field={field}/data={data}"


def reading(**overrides):
    body = {"node": "attic", "quantity": "temperature", "value": 21.5, "unit": "°C"}
    body.update(overrides)
    return body


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "readings.sqlite3"


@pytest.fixture
def app(db_path):
    return receiver.create_app(db_path, [KEY, OTHER_KEY])


@pytest.fixture
def client(app):
    return app.test_client()


def post(client, body, key=KEY, **kwargs):
    headers = {"X-Api-Key": key} if key else {}
    return client.post("/api/readings", json=body, headers=headers, **kwargs)


def stored_count(db_path):
    with sqlite3.connect(db_path) as conn:
        return conn.execute("SELECT COUNT(*) FROM readings").fetchone()[0]


# --- storage and configuration ----------------------------------------------------------

def test_database_is_in_wal_mode(app, db_path):
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_api_keys_come_from_env_and_file(tmp_path):
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps({"api_keys": ["from-file"]}))
    env = {"UPYNODE_API_KEYS": " a , b,,", "UPYNODE_KEYS_FILE": str(keys_file)}
    assert receiver.load_api_keys(env=env) == ["a", "b", "from-file"]
    keys_file.write_text(json.dumps(["plain-list"]))
    assert receiver.load_api_keys(str(keys_file), env={}) == ["plain-list"]
    assert receiver.load_api_keys(env={}) == []
    keys_file.write_text(json.dumps({"api_keys": [""]}))
    with pytest.raises(ValueError):
        receiver.load_api_keys(str(keys_file), env={})


def test_no_configured_key_means_nothing_is_accepted(db_path):
    client = receiver.create_app(db_path, []).test_client()
    assert client.get(tutorial_url()).status_code == 401
    assert post(client, reading()).status_code == 401


def test_field_map_parsing():
    assert receiver.parse_field_map("1=temperature, 4=pressure") == {1: "temperature", 4: "pressure"}
    for spec in ("1", "0=x", "100=x", "a=x", "1=bad name"):
        with pytest.raises(ValueError):
            receiver.parse_field_map(spec)


# --- the tutorial endpoint ------------------------------------------------------------

def test_tutorial_update_is_stored_with_field_and_quantity(client):
    response = client.get(tutorial_url(field="2", data="-3.25"))
    assert response.status_code == 200, response.json
    assert response.json == {"stored": 1, "node": NODE, "quantity": "humidity"}
    [row] = client.get("/api/readings").json
    assert (row["node"], row["field"], row["quantity"], row["value"]) == (NODE, 2, "humidity", -3.25)
    assert abs(row["ts"] - time.time()) < 60


def test_tutorial_accepts_every_configured_key_and_mac_spellings(client):
    for key, mac in ((KEY, "5c-cf-7f-01-02-03"), (OTHER_KEY, "5ccf7f010203")):
        assert client.get(tutorial_url(key=key, mac=mac)).status_code == 200
    assert {r["node"] for r in client.get("/api/readings").json} == {NODE}


def test_tutorial_field_map_is_configurable(db_path):
    client = receiver.create_app(db_path, [KEY], {4: "pressure"}).test_client()
    assert client.get(tutorial_url(field="4")).json["quantity"] == "pressure"
    assert client.get(tutorial_url(field="7")).json["quantity"] == "field7"


def test_tutorial_unknown_key_is_401(client, db_path):
    response = client.get(tutorial_url(key="wrong-key"))
    assert response.status_code == 401
    assert "unknown API key" in response.json["error"]
    assert stored_count(db_path) == 0


@pytest.mark.parametrize("field", ["0", "100", "abc", "1.5", "-1", "+1", "%201", "999999"])
def test_tutorial_bad_field_is_400(client, db_path, field):
    response = client.get(tutorial_url(field=field))
    assert response.status_code == 400
    assert "field must be an integer 1..99" in response.json["error"]
    assert stored_count(db_path) == 0


@pytest.mark.parametrize("data", ["nan", "NaN", "inf", "-Infinity", "1e999", "abc", "1_000",
                                  "0x10", "1.2.3", "%2021", "1e", "--1"])
def test_tutorial_bad_data_is_400(client, db_path, data):
    response = client.get(tutorial_url(data=data))
    assert response.status_code == 400
    assert "data must be a finite decimal number" in response.json["error"]
    assert stored_count(db_path) == 0


@pytest.mark.parametrize("data", ["21", "-0.5", ".5", "+3.", "1e3", "2.5E-2"])
def test_tutorial_plain_numbers_are_accepted(client, data):
    assert client.get(tutorial_url(data=data)).status_code == 200
    assert client.get("/api/readings").json[0]["value"] == float(data)


@pytest.mark.parametrize("mac", ["5C:CF:7F:01:02", "zz:cf:7f:01:02:03", "5C:CF-7F:01:02:03", "node1"])
def test_tutorial_bad_mac_is_400(client, db_path, mac):
    response = client.get(tutorial_url(mac=mac))
    assert response.status_code == 400
    assert "mac must be" in response.json["error"]
    assert stored_count(db_path) == 0


@pytest.mark.parametrize("url", ["/update/API_key=k/mac=5ccf7f010203/field=1/data=",
                                 "/update/API_key=k/mac=5ccf7f010203/field=1",
                                 "/update/api_key=k/mac=5ccf7f010203/field=1/data=1"])
def test_tutorial_malformed_url_is_400(client, url):
    response = client.get(url)
    assert response.status_code == 400
    assert "expected /update/API_key=" in response.json["error"]


def test_over_long_url_is_413(client, db_path):
    response = client.get(tutorial_url(data="1" * 2000))
    assert response.status_code == 413
    assert client.get("/nowhere?" + "x" * 2000).status_code == 413
    assert stored_count(db_path) == 0


@pytest.mark.parametrize("method, url, status", [("GET", "/nowhere", 404),
                                                  ("DELETE", "/api/readings", 405),
                                                  ("POST", tutorial_url(), 405)])
def test_any_error_is_json_with_its_status(client, method, url, status):
    response = client.open(url, method=method)
    assert response.status_code == status
    assert response.is_json and response.json["error"]


# --- the JSON endpoint ------------------------------------------------------------------

def test_post_one_reading_with_each_auth_header(client):
    response = post(client, reading(ts=1_700_000_000, seq=1))
    assert (response.status_code, response.json) == (201, {"stored": 1, "duplicates": 0})
    response = client.post("/api/readings", json=reading(seq=2),
                           headers={"Authorization": f"Bearer {OTHER_KEY}"})
    assert response.status_code == 201
    rows = client.get("/api/readings").json
    assert [(r["seq"], r["unit"]) for r in rows] == [(1, "°C"), (2, "°C")]
    assert rows[0]["ts"] == 1_700_000_000 and rows[0]["field"] is None


def test_post_without_content_type_is_still_json(client):
    response = client.post("/api/readings", data=json.dumps(reading()), headers={"X-Api-Key": KEY},
                           content_type="text/plain")
    assert response.status_code == 201


@pytest.mark.parametrize("headers", [{}, {"X-Api-Key": "wrong"}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": f"Basic {KEY}"}, {"X-Api-Key": "ключ"}])
def test_post_without_a_known_key_is_401(client, db_path, headers):
    response = client.post("/api/readings", json=reading(), headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert stored_count(db_path) == 0


def test_repeated_node_seq_is_stored_once(client, db_path):
    batch = [reading(seq=1), reading(seq=2), reading(seq=2, value=99)]
    assert post(client, batch).json == {"stored": 2, "duplicates": 1}
    # A node replaying its queue after a lost answer: all duplicates, answered 200.
    response = post(client, batch[:2])
    assert (response.status_code, response.json) == (200, {"stored": 0, "duplicates": 2})
    # Same seq from another node is a different reading; readings without seq never collide.
    assert post(client, [reading(node="cellar", seq=1), reading(), reading()]).json == \
        {"stored": 3, "duplicates": 0}
    assert stored_count(db_path) == 5
    assert [r["value"] for r in client.get("/api/readings?node=attic").json if r["seq"] == 2] == [21.5]


@pytest.mark.parametrize("body, message", [
    ({"quantity": "t", "value": 1, "unit": ""}, "node is missing"),
    (reading(node=""), "node must match"),
    (reading(node="a b"), "node must match"),
    (reading(node="x" * 65), "node must match"),
    (reading(node=5), "node must match"),
    (reading(quantity="1abc"), "quantity must match"),
    (reading(value="21.5"), "value must be a finite number"),
    (reading(value=True), "value must be a finite number"),
    (reading(value=None), "value must be a finite number"),
    (reading(unit=None), "unit must be printable text"),
    (reading(unit="x" * 17), "unit must be printable text"),
    (reading(unit="a\nb"), "unit must be printable text"),
    (reading(ts=800_000_000), "ts must be unix seconds"),        # MicroPython's 2000 epoch
    (reading(ts=time.time() + 3 * 86400), "ts must be unix seconds"),
    (reading(ts="yesterday"), "ts must be a finite number"),
    (reading(seq=-1), "seq must be an integer"),
    (reading(seq=1.5), "seq must be an integer"),
    (reading(seq=2**63), "seq must be an integer"),
    (reading(colour="red"), "colour is not a reading field"),
    ([], "a batch holds 1..500 readings"),
    ([{"node": "a", "quantity": "t", "value": 1, "unit": ""}] * 501, "a batch holds 1..500 readings"),
    ([reading(), "x"], "readings[1] must be a JSON object"),
    ([reading(), reading(value=[1])], "readings[1].value must be a finite number"),
    ("just a string", "body must be a JSON object"),
])
def test_post_bad_reading_is_400_naming_the_field(client, db_path, body, message):
    response = post(client, body)
    assert response.status_code == 400
    assert message in response.json["error"]
    assert stored_count(db_path) == 0     # a batch with one bad reading stores nothing


@pytest.mark.parametrize("raw", ['{"node":"a","quantity":"t","value":NaN,"unit":""}',
                                 '{"node":"a","quantity":"t","value":Infinity,"unit":""}',
                                 '{"node":"a","quantity":"t","value":1e999,"unit":""}'])
def test_post_non_finite_json_value_is_400(client, db_path, raw):
    # Python's json module parses these tokens; they must still be refused.
    response = client.post("/api/readings", data=raw, headers={"X-Api-Key": KEY},
                           content_type="application/json")
    assert response.status_code == 400
    assert "value must be a finite number" in response.json["error"]
    assert stored_count(db_path) == 0


@pytest.mark.parametrize("raw", ["", "{", "null", "{'node': 1}"])
def test_post_body_that_is_not_json_is_400(client, raw):
    response = client.post("/api/readings", data=raw, headers={"X-Api-Key": KEY},
                           content_type="application/json")
    assert response.status_code == 400
    assert "body must be a JSON object" in response.json["error"]


def test_oversized_body_is_413(client, db_path):
    body = [reading(seq=i, node="n" * 60) for i in range(500)]
    assert len(json.dumps(body)) > receiver.MAX_BODY_BYTES
    response = post(client, body)
    assert response.status_code == 413
    assert stored_count(db_path) == 0


# --- reading back -----------------------------------------------------------------------

@pytest.fixture
def filled(client):
    now = int(time.time())
    post(client, [reading(node="attic", ts=now - 3600, value=1),
                  reading(node="attic", ts=now - 60, value=2),
                  reading(node="attic", quantity="humidity", unit="%", ts=now - 60, value=50),
                  reading(node="cellar", ts=now - 7200, value=3)])
    client.get(tutorial_url(field="3", data="700"))
    return now


@pytest.mark.parametrize("query, values", [
    ("", [3, 1, 2, 50, 700]),
    ("?node=attic", [1, 2, 50]),
    ("?node=attic&quantity=temperature", [1, 2]),
    ("?quantity=light", [700]),
    ("?field=3", [700]),
    ("?node=nobody", []),
    ("?limit=2", [50, 700]),               # the newest two, oldest first
])
def test_read_back_with_filters(client, filled, query, values):
    rows = client.get("/api/readings" + query).json
    assert sorted(r["value"] for r in rows) == sorted(values)
    assert [r["ts"] for r in rows] == sorted(r["ts"] for r in rows)


def test_read_back_since(client, filled):
    rows = client.get(f"/api/readings?since={filled - 3700}").json
    assert sorted(r["value"] for r in rows) == [1, 2, 50, 700]
    assert client.get(f"/api/readings?since={filled + 3600}").json == []


@pytest.mark.parametrize("query, message", [("?field=x", "field must be an integer"),
                                            ("?since=nan", "since must be a finite"),
                                            ("?limit=0", "limit must be"),
                                            ("?nod=attic", "unknown query parameter 'nod'")])
def test_read_back_bad_query_is_400(client, query, message):
    response = client.get("/api/readings" + query)
    assert response.status_code == 400
    assert message in response.json["error"]


@pytest.mark.parametrize("query, status", [("?limit=1", 200), ("?limit=10000", 200), ("?limit=01", 200),
                                           ("?limit=10001", 400), ("?limit=", 400), ("?limit=+1", 400),
                                           ("?field=01", 200), ("?field=99", 200), ("?field=100", 400)])
def test_read_back_limit_and_field_bounds(client, query, status):
    assert client.get("/api/readings" + query).status_code == status


def test_field_map_and_query_share_the_field_rule():
    assert receiver.parse_field_map("01=a,99=b") == {1: "a", 99: "b"}
    for spec in ("+1=a", "1 0=a", "001=a"):
        with pytest.raises(ValueError):
            receiver.parse_field_map(spec)


def test_page_embeds_last_24h_per_quantity_and_node(client, filled):
    post(client, reading(node="attic", ts=filled - 25 * 3600, value=-40))      # too old to chart
    html = client.get("/").get_data(as_text=True)
    data = json.loads(re.search(r'<script type="application/json" id="chart-data">(.*?)</script>',
                                html, re.S).group(1))
    assert data["window_s"] == 24 * 3600 and abs(data["now"] - time.time()) < 60
    charts = data["charts"]
    assert list(charts) == ["humidity", "light", "temperature"]
    assert charts["humidity"]["unit"] == "%" and charts["temperature"]["unit"] == "°C"
    assert [v for _, v in charts["temperature"]["series"]["attic"]] == [1, 2]
    assert [v for _, v in charts["temperature"]["series"]["cellar"]] == [3]
    assert [v for _, v in charts["light"]["series"][NODE]] == [700]


def test_page_lists_nodes_with_latest_readings(client, filled):
    html = client.get("/").get_data(as_text=True)
    assert re.search(r'data-node="attic" data-quantity="temperature">.*?<td class="value">2 °C</td>',
                     html, re.S)
    assert re.search(rf'data-node="{NODE}" data-quantity="light">.*?<td class="value">700 </td>',
                     html, re.S)
    assert 'src="/vendor/chart.umd.min.js"' in html


def test_page_without_readings_and_without_chartjs(db_path, tmp_path):
    client = receiver.create_app(db_path, [KEY], chartjs_dir=tmp_path / "empty").test_client()
    assert "No readings yet." in client.get("/").get_data(as_text=True)
    response = client.get("/vendor/chart.umd.min.js")
    assert response.status_code == 404
    assert "python -m upynode_receiver.chartjs" in response.json["error"]


# --- a real waitress process ------------------------------------------------------------

@pytest.fixture
def live_server(tmp_path):
    """`upynode-receiver` on a free 127.0.0.1 port; yields its base URL."""
    from upynode_vboard.receiver_process import ReceiverProcess
    with ReceiverProcess(str(tmp_path / "live.sqlite3"), f"{KEY},{OTHER_KEY}",
                         log_path=str(tmp_path / "server.log")) as rx:
        yield rx.url


def http(method, url, body=None, headers=None):
    """(status, parsed JSON or text) of one real HTTP request."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            status, raw, ctype = response.status, response.read(), response.headers["Content-Type"]
    except urllib.error.HTTPError as err:
        status, raw, ctype = err.code, err.read(), err.headers.get("Content-Type", "")
    return status, json.loads(raw) if "json" in ctype else raw.decode()


def test_real_waitress_process_serves_http(live_server):
    assert http("GET", live_server + tutorial_url(data="19.5")) == \
        (200, {"stored": 1, "node": NODE, "quantity": "temperature"})
    assert http("POST", live_server + "/api/readings", [reading(seq=7)],
                {"Authorization": f"Bearer {OTHER_KEY}", "Content-Type": "application/json"}) == \
        (201, {"stored": 1, "duplicates": 0})
    assert http("GET", live_server + tutorial_url(key="nope"))[0] == 401
    status, rows = http("GET", live_server + "/api/readings")
    assert status == 200 and [r["value"] for r in rows] == [19.5, 21.5]
    # waitress itself refuses the oversized body (max_request_body_size) with 413.
    big = [reading(node="n" * 60, seq=i) for i in range(500)]
    assert http("POST", live_server + "/api/readings", big, {"X-Api-Key": KEY})[0] == 413


# --- the page in headless Chromium ----------------------------------------------------

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium chromium-driver)")
def test_page_charts_one_point_per_reading_in_chromium(live_server, tmp_path):
    chartjs.ensure()   # fetches the pinned Chart.js into build/ if it is not there yet
    now = time.time()
    headers = {"X-Api-Key": KEY}
    temperatures = [reading(node="attic", ts=now - 600 * i, seq=i, value=20 + i % 3) for i in range(5)] \
        + [reading(node="cellar", ts=now - 900 * i, seq=i, value=12 + i) for i in range(3)]
    humidity = [reading(node="attic", quantity="humidity", unit="%", ts=now - 1200 * i, value=40 + i)
                for i in range(4)]
    too_old = [reading(node="attic", ts=now - 25 * 3600, value=-40)]   # outside the 24 h charts
    assert http("POST", live_server + "/api/readings", temperatures + humidity + too_old, headers)[0] == 201
    assert http("GET", live_server + tutorial_url(field="3", data="512"))[0] == 200

    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1200,1400",
         "--virtual-time-budget=10000", "--dump-dom", live_server + "/"],
        capture_output=True, text=True, timeout=120)
    dom = result.stdout
    assert 'data-charts="rendered"' in dom, f"charts did not render:\n{dom[-2000:]}\n{result.stderr[-2000:]}"
    points = dict(re.findall(r'<canvas data-quantity="(\w+)"[^>]*data-points="(\d+)"', dom))
    assert points == {"humidity": "4", "light": "1", "temperature": "8"}
    assert 'data-chart-points="13"' in dom
