"""Hostile config.json files against the firmware's own config module under
CPython (issue 7): wrong types, huge and deep values, bytes that are not
UTF-8, 1e999, empty files, sections written as strings, secrets in URLs.
Whatever the file, parse() returns a valid config or raises ConfigError, the
message names a key (or says what is wrong with the file), holds no control
character and no secret from the file.

tests/faults/test_config_faults.py runs the same check for the fault table
and boots SAMPLES in the VM.
"""
import json
import math
import re
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from upynode import config

# Secrets are drawn from their own alphabet behind a marker, so one showing
# up in a message cannot be a coincidence with a key name or another value.
SECRET = st.text(alphabet=string.ascii_uppercase + string.digits, min_size=4, max_size=7).map(lambda s: "ZQ" + s)
SECRET_KEYS = [("wifi", "password"), ("webrepl", "password"), ("mqtt", "password"),
               ("homeassistant", "token"), ("homeassistant", "api_password"), ("http", "api_key")]
SECTIONS = ["wifi", "webrepl", "mqtt", "homeassistant", "http"]
INF = "__INF__"  # placed as a string, written as 1e999 / -1e999 / NaN in the file's text

LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10 ** 20, max_value=10 ** 60),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30),
    st.text(alphabet=st.characters(max_codepoint=0x1f), max_size=5),  # control characters, NUL
    st.sampled_from([INF + "+", INF + "-", INF + "nan", "", "mqtt", "http", "deep", "receiver", "remote",
                     "192.168.1.1", "pool.ntp.org", "dht22", "adc", "mcp9808", "ds18b20", "°C"]),
)
VALUE = st.recursive(LEAF, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                  st.dictionaries(st.text(max_size=8), kids, max_size=4)),
                     max_leaves=12)

# Every key path a config can have, for the mutations to aim at.
PATHS = [(k,) for k in config.DEFAULTS] + [
    (k, kk) for k, v in config.DEFAULTS.items() if isinstance(v, dict) for kk in v]
SENSOR_KEYS = ["type", "pin", "prefix", "retries", "scl", "sda", "address", "rom", "quantity", "unit", "min", "max"]


def base(secrets):
    """A valid config that holds every kind of secret."""
    wifi, webrepl, mqtt, token, api_password, api_key = secrets
    return {"wifi": {"ssid": "home", "password": wifi}, "webrepl": {"password": webrepl},
            "mqtt": {"host": "192.0.2.10", "user": "me", "password": mqtt},
            "homeassistant": {"url": "http://192.0.2.5:8123", "token": token, "api_password": api_password},
            "http": {"url": "http://me:%s@192.0.2.6:8080" % api_key, "api_key": api_key},
            "sensors": [{"type": "adc"}, {"type": "dht22", "prefix": "room_"}]}


def deep(n):
    return "[" * n + "]" * n


def text_of(doc):
    """The doc as a file's text; INF markers become what JSON cannot hold."""
    t = json.dumps(doc, ensure_ascii=False)
    return (t.replace('"%s+"' % INF, "1e999").replace('"%s-"' % INF, "-1e999").replace('"%snan"' % INF, "NaN"))


@st.composite
def hostile(draw):
    """-> (file bytes, [secrets in it], what was done to it)"""
    secrets = draw(st.lists(SECRET, min_size=6, max_size=6, unique=True))
    doc = base(secrets)
    how = draw(st.sampled_from(["value", "values", "section", "sensor", "whole", "deep", "bytes",
                                "truncate", "pad", "empty", "url", "keys", "transports"]))
    if how in ("value", "values"):
        for _ in range(1 if how == "value" else draw(st.integers(2, 6))):
            path = draw(st.sampled_from(PATHS))
            node = doc
            for k in path[:-1]:
                if not isinstance(node.get(k), dict):
                    node[k] = {}
                node = node[k]
            node[path[-1]] = draw(VALUE)
    elif how == "section":  # "webrepl": "wrPW9x": the section is the secret
        s = draw(st.sampled_from(SECTIONS))
        doc[s] = draw(st.sampled_from([secrets[0], [secrets[0]], {"x": secrets[0]}, 7]))
        if doc[s] == {"x": secrets[0]}:
            doc[s] = secrets[0]
    elif how == "sensor":
        entry = draw(st.dictionaries(st.sampled_from(SENSOR_KEYS), VALUE, max_size=5))
        if draw(st.booleans()):
            entry["type"] = draw(st.sampled_from(["adc", "dht11", "dht22", "ds18b20", "mcp9808"]))
        doc["sensors"].append(entry)
    elif how == "whole":
        doc = draw(st.one_of(VALUE, st.just(secrets[0]), st.just([secrets[0], secrets[1]])))
    elif how == "deep":
        doc[draw(st.sampled_from(["sensors", "wifi", "transports", "http"]))] = INF + "deep"
    elif how == "url":
        key = draw(st.sampled_from([("homeassistant", "url"), ("http", "url"), ("mqtt", "host"), ("ntp", "host")]))
        doc.setdefault(key[0], {})[key[1]] = draw(st.sampled_from(["https", "http", "ftp", "mqtt"])) + \
            "://user:%s@192.0.2.9/" % secrets[1]
        doc["transports"] = ["mqtt", "http"]
    elif how == "keys":
        doc[draw(st.sampled_from(SECTIONS))] = draw(st.dictionaries(st.text(max_size=50), VALUE, min_size=1,
                                                                    max_size=3))
    elif how == "transports":
        doc["transports"] = draw(st.lists(st.sampled_from(["mqtt", "http", "MQTT", "", "lora"]), max_size=4))
    text = text_of(doc)
    if how == "deep":
        text = text.replace('"%sdeep"' % INF, deep(draw(st.sampled_from([6, 50, 900, 1500, 3000, 10000]))))
    data = text.encode()
    if how == "bytes":  # Latin-1 secrets, or random bytes spliced in
        if draw(st.booleans()):
            data = text.replace(secrets[0], secrets[0] + "\u00e9").encode("latin-1", "replace")
        else:
            at = draw(st.integers(0, len(data)))
            data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    elif how == "truncate":
        data = data[:draw(st.integers(0, len(data)))]
    elif how == "pad":  # one wrong value padded with spaces past the limit
        data = data[:-1] + b" " * draw(st.integers(0, 70000)) + data[-1:]
    elif how == "empty":
        data = draw(st.sampled_from([b"", b" ", b"\n", b"\xef\xbb\xbf{}", b"\x00", b"null"]))
    return data, secrets + ["user:" + secrets[1]], how


KNOWN = set(config.DEFAULTS) | {"config"}
FILE_WORDS = ("config.json is ", "config.json: ")


def names_a_key(msg, data=b""):
    """The message starts with what is wrong with the file, or with a key
    path whose first part is a config key, 'config' (the whole file) or a
    key the file has (an unknown key, shown quoted when odd)."""
    if msg.startswith(FILE_WORDS):
        return True
    m = re.match(r'^([^ :=."\[\]]+|"(?:[^"\\]|\\.)*")(\[\d+\]|\.[^ :=."\[\]]+|\."(?:[^"\\]|\\.)*")*(: | = )', msg)
    if not m:
        return False
    root = m.group(1)
    if root[0] == '"':
        root = json.loads(root)
    return root in KNOWN or root in keys_in(data)


def keys_in(data):
    """Every object key in the file, at any depth."""
    try:
        todo, out = [json.loads(data)], set()
    except (ValueError, RecursionError):
        return set()
    while todo:
        v = todo.pop()
        if isinstance(v, dict):
            out.update(v)
            todo.extend(v.values())
        elif isinstance(v, list):
            todo.extend(v)
    return out


def problems(data, secrets):
    """What is wrong with the config module's answer to one file: [] when
    nothing."""
    try:
        c = config.parse(data)
    except config.ConfigError as e:
        msg = str(e)
        out = []
        if not names_a_key(msg, data if isinstance(data, bytes) else data.encode()):
            out.append("names no key: %r" % msg)
        if any(s in msg for s in secrets):
            out.append("shows a secret: %r" % msg)
        if any(ch < " " or ch == "\x7f" for ch in msg):
            out.append("control character in %r" % msg)
        if len(msg) > 600:
            out.append("%d characters long: %r" % (len(msg), msg[:100]))
        return out
    except Exception as e:  # anything but ConfigError is the defect
        return ["%s: %s" % (type(e).__name__, str(e)[:200])]
    # accepted: then it is one a node can run
    try:
        json.dumps(c, allow_nan=False)
    except ValueError:
        return ["accepted a non-finite number"]
    if any(ch < " " for ch in c["mqtt"]["base_topic"] + c["node_id"]):
        return ["accepted a control character in a topic"]
    return []


def check_many(n, seed=None):
    """Run n hostile files -> (count checked, {how: count}, [problems])."""
    seen, found, hows = [0], [], {}

    @settings(max_examples=n, database=None, deadline=None, derandomize=seed is not None,
              suppress_health_check=list(HealthCheck))
    @given(hostile())
    def run(case):
        data, secrets, how = case
        seen[0] += 1
        hows[how] = hows.get(how, 0) + 1
        for p in problems(data, secrets):
            found.append("%s (%s, %d bytes)" % (p, how, len(data)))
    run()
    return seen[0], hows, found


def test_a_thousand_hostile_configs_raise_only_config_errors_that_name_a_key_and_no_secret():
    n, hows, found = check_many(1000)
    assert n == 1000 and len(hows) == 13, hows
    assert not found, "\n".join(found[:20])


# The checker itself: a message it should refuse, and one it should pass.
def test_the_checker_catches_what_it_looks_for():
    assert problems(b'{"webrepl": "ZQSECRET"}', ["ZQSECRET"]) == []
    assert names_a_key("sensors[0].max: expected a finite number")
    assert names_a_key('mqtt."a b": unknown key (expected one of: host)')
    assert names_a_key('"a:b"[0]: expected a finite number', b'{"a:b": [1e999]}')
    assert not names_a_key('"a:b"[0]: expected a finite number', b'{}')
    assert not names_a_key("something went wrong")
    assert not names_a_key("Traceback: 42")


# A sample to boot in the VM (tests/faults/test_config_faults.py): one file
# of each kind, fixed, with the secret it must not show.
S = "ZQ9SECRET"


def _sample_doc(**over):
    d = base([S, "ZQwrpw1", S + "M", S + "T", S + "A", S + "K"])
    d["mqtt"]["host"] = "127.0.0.1"
    d["homeassistant"]["url"] = "http://127.0.0.1:8123"
    d["http"]["url"] = "http://127.0.0.1:8080"
    d.update(over)
    return d


SAMPLES = [
    ("latin1-password", text_of(_sample_doc()).replace(S, S + "\u00e9", 1).encode("latin-1")),
    ("padded-6KB", text_of(_sample_doc(interval_s="often"))[:-1].encode() + b" " * 6000 + b"}"),
    ("padded-64KB", text_of(_sample_doc(interval_s="often"))[:-1].encode() + b" " * 65536 + b"}"),
    ("inf-max", text_of(_sample_doc(sensors=[{"type": "adc", "max": INF + "+"}])).encode()),
    ("nan-threshold", text_of(_sample_doc(led={"threshold": INF + "nan"})).encode()),
    ("deep-1500", text_of(_sample_doc(sensors=INF + "deep")).replace('"%sdeep"' % INF, deep(1500)).encode()),
    ("webrepl-as-string", text_of(_sample_doc(webrepl="ZQwrpw1")).encode()),
    ("wifi-as-list", text_of(_sample_doc(wifi=["home", S])).encode()),
    ("whole-file-a-string", json.dumps(S).encode()),
    ("empty", b""),
    ("nul-in-base_topic", text_of(_sample_doc(mqtt={"host": "127.0.0.1", "base_topic": "home\u0000x"})).encode()),
    ("control-char-in-unit", text_of(_sample_doc(sensors=[{"type": "adc", "unit": "lx\n"}])).encode()),
    ("duplicate-transports", text_of(_sample_doc(transports=["mqtt", "mqtt"])).encode()),
    ("https-url-with-password", text_of(_sample_doc(
        transports=["http"], homeassistant={"url": "https://admin:%s@127.0.0.1" % S, "token": "t"})).encode()),
    ("sensor-type-object", text_of(_sample_doc(sensors=[{"type": {}}])).encode()),
    ("truncated", text_of(_sample_doc())[:40].encode()),
    # issue 20: 31-character prefixes with the smallest queue and two sinks made every
    # reading too big for the queue, and the receiver refused the names
    ("long-prefixes", text_of(_sample_doc(
        transports=["mqtt", "http"], http={"target": "receiver", "url": "http://127.0.0.1:9", "api_key": "k"},
        backlog={"max_kb": 1}, sensors=[{"type": "mcp9808", "prefix": "p" * 31},
                                        {"type": "dht22", "prefix": "q" * 31}])).encode()),
    ("mqtt-host-with-credentials", text_of(_sample_doc(mqtt={"host": "mqtt://admin:%s@127.0.0.1" % S})).encode()),
]


def test_the_vm_sample_is_hostile_too():
    for name, data in SAMPLES:
        assert problems(data, [S, "ZQwrpw1"]) == [], name
        try:
            config.parse(data)
        except config.ConfigError:
            continue
        raise AssertionError("%s was accepted" % name)


def test_non_finite_numbers_are_what_the_file_holds():
    # The INF markers really become JSON's out-of-range numbers.
    doc = json.loads(text_of({"a": INF + "+", "b": INF + "-", "c": INF + "nan"}))
    assert doc["a"] == math.inf and doc["b"] == -math.inf and doc["c"] != doc["c"]


@settings(max_examples=1000, database=None, deadline=None)
@given(st.one_of(st.binary(max_size=40), st.text(max_size=20).map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_the_first_bad_byte_is_where_cpython_finds_it(data):
    # config._bytes() is the node's UTF-8 check: no bracket nesting here,
    # so it answers -1 (UTF-8) or the offset CPython's decoder reports.
    data = data.replace(b"[", b"").replace(b"{", b"")
    try:
        data.decode()
        want = -1
    except UnicodeDecodeError as e:
        want = e.start
    assert config._bytes(data) == want
