"""Bodies built to break the receiver (issue 7, defect 11): numbers too large for a float
and deeply nested JSON are a 400 that says so, never a 500, and store nothing."""
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
