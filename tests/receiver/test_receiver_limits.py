"""Bodies built to break the receiver (issue 7, defect 11): numbers too large for a float
and deeply nested JSON are a 400 that says so, never a 500, and store nothing; a key past
its rate is a 429 with Retry-After; bodies are bounded with or without Content-Length."""
import sqlite3
import time

import pytest

from upynode_receiver import receiver

KEY = "limits-key"
HUGE = "1" + "0" * 320              # a JSON integer past float's range (1.8e308)


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "readings.sqlite3"


@pytest.fixture
def client(db_path):
    return receiver.create_app(db_path, [KEY]).test_client()


def post_raw(client, raw):
    return client.post("/api/readings", data=raw, headers={"X-Api-Key": KEY},
                       content_type="application/json")


def count(db_path):
    with sqlite3.connect(db_path) as conn:
        return conn.execute("SELECT COUNT(*) FROM readings").fetchone()[0]


NOW = int(time.time())


@pytest.mark.parametrize("raw, message", [
    ('{"node":"a","quantity":"t","unit":"","value":%s}' % HUGE, "value must be a finite number"),
    ('{"node":"a","quantity":"t","unit":"","value":-%s}' % HUGE, "value must be a finite number"),
    ('{"node":"a","quantity":"t","unit":"","value":1,"ts":%s}' % HUGE, "ts must be a finite number"),
    ('{"node":"a","up":%s,"readings":[{"boot":1,"seq":1,"ts":%d,"t":1}]}' % (HUGE, NOW),
     "up must be a finite number"),
    ('{"node":"a","readings":[{"boot":1,"seq":1,"ts":%s,"t":1}]}' % HUGE, "ts must be a finite number"),
    ('{"node":"a","readings":[{"boot":1,"seq":1,"up":%s,"t":1}]}' % HUGE, "up must be a finite number"),
    ('{"node":"a","readings":[{"boot":1,"seq":1,"ts":%d,"t":%s}]}' % (NOW, HUGE), "t must be a finite number"),
    ('{"node":"a","readings":[{"boot":%s,"seq":1,"ts":%d,"t":1}]}' % (HUGE, NOW), "boot must be an integer"),
])
def test_an_integer_too_large_for_a_float_is_400(client, db_path, raw, message):
    response = post_raw(client, raw)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert message in response.json["error"]
    assert "an integer of about 321 digits" in response.json["error"]
    assert count(db_path) == 0


def test_the_largest_float_sized_integer_is_still_a_number(client, db_path):
    raw = '{"node":"a","quantity":"t","unit":"","value":%d}' % (2**1023)
    assert post_raw(client, raw).status_code == 201
    assert client.get("/api/readings").json[0]["value"] == float(2**1023)


@pytest.mark.parametrize("raw", ["[" * 30000 + "]" * 30000,          # json.loads: RecursionError
                                 "[" * 2000,                         # unclosed as well
                                 '{"a":' * 5000 + "1" + "}" * 5000,
                                 "[" * 9 + "]" * 9,                  # parses, but past the limit
                                 '{"node":"a","readings":[{"boot":1,"seq":1,"ts":%d,'
                                 '"err":{"x":[[[[[1]]]]]}}]}' % NOW])
def test_deeply_nested_json_is_400(client, db_path, raw):
    response = post_raw(client, raw)
    assert response.status_code == 400
    assert "nests deeper than 8 levels" in response.json["error"]
    assert count(db_path) == 0


def test_a_batch_at_the_nesting_limit_is_accepted(client, db_path):
    raw = '{"node":"a","readings":[{"boot":1,"seq":1,"ts":%d,"t":1,"err":{"x":[[[[1]]]]}}]}' % NOW
    assert post_raw(client, raw).status_code == 201
    assert count(db_path) == 1


# --- rate limit per API key ----------------------------------------------------------------

class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def limited(db_path):
    """An app allowing 3 requests a minute per key, on a clock the test moves."""
    app = receiver.create_app(db_path, [KEY, "second-key"], rate_limit=3)
    clock = app.config["RATE_LIMITER"].clock = Clock()
    return app.test_client(), clock


def post_reading(client, seq, key=KEY):
    return client.post("/api/readings", headers={"X-Api-Key": key},
                       json={"node": "a", "quantity": "t", "value": 1, "unit": "", "seq": seq})


def test_a_key_past_its_rate_is_429_with_retry_after_and_stores_nothing(limited, db_path):
    client, clock = limited
    assert [post_reading(client, seq).status_code for seq in (1, 2, 3)] == [201] * 3
    response = post_reading(client, 4)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "20"          # one request every 60/3 s
    assert "more than 3 requests a minute" in response.json["error"]
    # The tutorial URL with that key is limited too; another key is not.
    assert client.get("/update/API_key=%s/mac=5ccf7f010203/field=1/data=1" % KEY).status_code == 429
    assert post_reading(client, 5, key="second-key").status_code == 201
    assert count(db_path) == 4
    clock.now += 19
    assert post_reading(client, 4).headers["Retry-After"] == "1"
    clock.now += 1
    assert post_reading(client, 4).status_code == 201
    assert post_reading(client, 6).status_code == 429
    clock.now += 3600      # a quiet hour refills the burst, no more
    assert [post_reading(client, seq).status_code for seq in (7, 8, 9, 10)] == [201, 201, 201, 429]


def test_guessing_keys_is_limited_per_address(limited, db_path):
    client, _ = limited
    answers = [post_reading(client, 1, key=f"guess{i}") for i in range(4)]
    assert [a.status_code for a in answers] == [401, 401, 401, 429]
    assert "from this address with unknown keys" in answers[-1].json["error"]
    assert post_reading(client, 1).status_code == 201       # the real key has its own rate
    assert count(db_path) == 1


def test_rate_limit_zero_is_no_limit(db_path):
    client = receiver.create_app(db_path, [KEY], rate_limit=0).test_client()
    assert {post_reading(client, seq).status_code for seq in range(1, 101)} == {201}


# --- limits of the real server (waitress) ------------------------------------------------------

@pytest.fixture
def live(tmp_path):
    from upynode_vboard.receiver_process import ReceiverProcess
    with ReceiverProcess(str(tmp_path / "live.sqlite3"), KEY, rate_limit=2) as rx:
        yield rx


def send(url, body, headers, chunked=False):
    """(status, headers) of one POST; a chunked one has no Content-Length to check."""
    import http.client
    import urllib.parse
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        try:
            if chunked:
                conn.request("POST", parts.path, body=iter([body[i:i + 4096] for i in range(0, len(body), 4096)]),
                             headers=headers, encode_chunked=True)
            else:
                conn.request("POST", parts.path, body=body, headers=headers)
        except (BrokenPipeError, ConnectionResetError):
            pass        # the server answered and closed before the whole body was sent: read that answer
        response = conn.getresponse()
        response.read()
        return response.status, response.headers
    finally:
        conn.close()


def test_the_command_limits_rate_and_chunked_bodies(live):
    import json
    headers = {"X-Api-Key": KEY, "Content-Type": "application/json"}
    url = live.url + "/api/readings"
    small = json.dumps({"node": "a", "quantity": "t", "value": 1, "unit": ""}).encode()
    # A body without Content-Length is bounded as well.
    big = json.dumps([{"node": "n" * 60, "quantity": "t", "value": 1, "unit": ""}] * 800).encode()
    assert len(big) > receiver.MAX_BODY_BYTES
    assert send(url, big, headers, chunked=True)[0] == 413
    assert send(url, small, headers, chunked=True)[0] == 201
    assert send(url, small, headers)[0] == 201
    status, response_headers = send(url, small, headers)
    # One request every 30 s; less the time since the last one (a loaded machine is slow).
    assert status == 429 and 1 <= int(response_headers["Retry-After"]) <= 30
    assert count(live.db) == 2


def test_slow_clients_do_not_lock_a_node_out(tmp_path):
    # 200 connections that each send a header line a second (slowloris)
    # hold sockets only: a node's POST among them is stored at once.
    import json
    import socket
    import threading
    import urllib.request
    from upynode_vboard.receiver_process import ReceiverProcess
    with ReceiverProcess(str(tmp_path / "live.sqlite3"), KEY, rate_limit=0) as rx:
        slow, stop = [], threading.Event()
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", rx.port), timeout=5)
            s.sendall(b"POST /api/readings HTTP/1.1\r\nHost: x\r\n")
            slow.append(s)

        def drip():
            while not stop.wait(1):
                for s in slow:
                    try:
                        s.sendall(b"X-Slow: 1\r\n")
                    except OSError:
                        pass
        t = threading.Thread(target=drip, daemon=True)
        t.start()
        try:
            time.sleep(2)
            body = json.dumps({"node": "n1", "quantity": "temperature", "unit": "C", "value": 20.5,
                               "ts": NOW}).encode()
            req = urllib.request.Request(rx.url + "/api/readings", data=body, method="POST",
                                         headers={"X-Api-Key": KEY, "Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as r:
                assert r.status == 201
        finally:
            stop.set()
            t.join(5)
            for s in slow:
                s.close()
