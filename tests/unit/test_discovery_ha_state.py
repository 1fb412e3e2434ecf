"""The ha_state LED's reader (lib/upynode/ha.py _state): the top-level
"state" of Home Assistant's answer, scanned as it streams in 64-byte chunks,
never the body whole (issue 10 defect 4). Against the real HA and in the
VM: tests/ha/test_ha_defects.py, tests/vm/test_vm_http.py."""
import json

import pytest

from upynode.ha import _state


class Stream:
    """A response body read as a socket is, at most n bytes a read."""

    def __init__(self, body):
        self.body, self.at, self.reads = body, 0, []

    def read(self, n):
        self.reads.append(n)
        b = self.body[self.at:self.at + n]
        self.at += n
        return b


def read(obj, **dump):
    return _state(Stream(json.dumps(obj, **dump).encode()))


@pytest.mark.parametrize("dump", [{}, {"separators": (",", ":")}, {"indent": 2}])
def test_the_top_level_state_not_one_in_the_attributes(dump):
    assert read({"entity_id": "sensor.x", "state": "25",
                 "attributes": {"state": "no", "x": ["}", "\"state\": \"no\""]}}, **dump) == "25"
    # after the attributes, with "state" as a value before it
    assert read({"entity_id": "state", "attributes": {"a": "x" * 3000, "l": [{"state": 1}]},
                 "state": "on"}, **dump) == "on"


def test_escapes_and_non_ascii_come_back_as_text():
    assert read({"state": "é \" \\ ok"}) == "é \" \\ ok"
    assert read({"state": "x" * 255}) == "x" * 255  # HA's longest state


def test_no_state_is_none():
    for body in (b"", b"not json", b'{"stat": "x"}', b'{"state": {"a": 1}}', b'{"state": null}',
                 b'{"state": "' + b"x" * 300 + b'"}', b'{"state": "cut sh'):
        assert _state(Stream(body)) is None, body


def test_it_stops_reading_once_it_has_the_state():
    # HA sends entity_id and state first: the attributes are never read
    s = Stream(json.dumps({"entity_id": "weather.home", "state": "rainy",
                           "attributes": {"forecast": ["rain"] * 5000}}).encode())
    assert _state(s) == "rainy"
    assert s.reads == [64]
