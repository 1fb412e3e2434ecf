"""What a request may carry: each check returns the clean value or aborts with a 400
whose text names what is wrong, so a node's log says which field to fix."""
import json
import math
import re

from flask import abort

from .store import DEFAULT_LIMIT

MAX_BATCH = 500
MAX_FIELD = 99
MAX_LIMIT = 10000
# Unix seconds before 2001-09-09 are refused: MicroPython's time.time() counts from 2000,
# so a node that forgot to convert would otherwise store readings dated in the 1990s.
MIN_TS = 1_000_000_000
MAX_FUTURE_S = 24 * 3600        # tolerate a node's clock running ahead, not a wrong year
SHOWN_CHARS = 40                # how much of a bad value an error message repeats

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")      # node names (macs fit)
QUANTITY_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,31}")
MAC_RE = re.compile(r"[0-9A-Fa-f]{2}([:-]?)[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}")
# What float() would accept minus its extras ("nan", "inf", "1_000", " 1", "0x1"...).
NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")
READING_KEYS = ("node", "quantity", "value", "unit", "ts", "seq")
# A node's batch: {"node", "up", "units", "readings": [record, ...]}; a record carries
# boot, seq, ts or up, err, and one number per quantity. The live MQTT message carries
# diagnostics too: they are the node's state, not readings, and are not stored.
BATCH_KEYS = ("node", "up", "units", "readings")
RECORD_KEYS = ("ep", "boot", "seq", "ts", "up", "err")
DIAGNOSTIC_KEYS = ("heap", "rssi", "q", "drop", "reset")
MAX_UP_S = 2**32                # uptime in seconds: 136 years
MAX_UNIT_CHARS = 16
MAX_FLOAT_INT = 2**1024         # the smallest int float() refuses
MAX_JSON_DEPTH = 8              # a node's batch nests 4 deep: {readings: [{err: {}}]}
REQUIRED_READING_KEYS = ("node", "quantity", "value", "unit")
QUERY_KEYS = ("node", "field", "quantity", "since", "limit")


def bad(message):
    abort(400, description=message)


def shown(text):
    """A URL or query value as an error message quotes it."""
    return repr(text[:SHOWN_CHARS])


def shown_json(value):
    """A JSON value as an error message quotes it."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**SHOWN_CHARS:
        # str() of a long int is slow (and refused past 4300 digits): say how long it is.
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    return json.dumps(value)[:SHOWN_CHARS]


# --- text from a URL or query string ------------------------------------------------------

def int_in_range(text, low, high):
    """int(text) if it is plain decimal digits (no sign, spaces or '_') within low..high, else None."""
    # The length bound keeps int() away from absurdly long digit strings.
    if re.fullmatch(rf"[0-9]{{1,{len(str(high))}}}", text) and low <= int(text) <= high:
        return int(text)
    return None


def parse_int_text(text, name, low, high):
    number = int_in_range(text, low, high)
    if number is None:
        bad(f"{name} must be an integer {low}..{high}, got {shown(text)}")
    return number


def parse_field(text):
    return parse_int_text(text, "field", 1, MAX_FIELD)


def parse_number_text(text, name):
    value = float(text) if NUMBER_RE.fullmatch(text) else math.nan
    if not math.isfinite(value):    # also catches "1e999", which float() turns into inf
        bad(f"{name} must be a finite decimal number, got {shown(text)}")
    return value


def parse_mac(text):
    if not MAC_RE.fullmatch(text):
        bad(f"mac must be 6 hex bytes like 5c:cf:7f:01:02:03, got {shown(text)}")
    digits = re.sub(r"[:-]", "", text).lower()
    # One spelling per node, so "5C-CF-..." and "5ccf..." are the same node.
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def parse_query(args):
    """GET /api/readings' query string -> keyword arguments of store.query_readings."""
    unknown = sorted(set(args) - set(QUERY_KEYS))
    if unknown:
        bad(f"unknown query parameter {unknown[0]!r} (allowed: {', '.join(QUERY_KEYS)})")
    limit = parse_int_text(args.get("limit", str(DEFAULT_LIMIT)), "limit", 1, MAX_LIMIT)
    return {
        "node": args.get("node") or None,
        "quantity": args.get("quantity") or None,
        "field": parse_field(args["field"]) if args.get("field") else None,
        "since": parse_number_text(args["since"], "since") if args.get("since") else None,
        "limit": limit,
    }


def parse_held_query(args):
    """GET /api/held's query string -> the node name."""
    unknown = sorted(set(args) - {"node"})
    if unknown:
        bad(f"unknown query parameter {unknown[0]!r} (allowed: node)")
    node = args.get("node", "")
    if not NAME_RE.fullmatch(node):
        bad(f"node must match {NAME_RE.pattern}, got {shown(node)}")
    return node


# --- JSON bodies --------------------------------------------------------------------------

def json_number(obj, key, where):
    value = obj[key]
    # bool is an int in Python, but true/false are not readings. An int of 309+ digits
    # has no float (float() raises OverflowError).
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or (isinstance(value, int) and abs(value) >= MAX_FLOAT_INT) \
            or not math.isfinite(value):
        bad(f"{where}{key} must be a finite number, got {shown_json(value)}")
    return float(value)


def json_text(obj, key, where, pattern=None, max_len=64):
    value = obj[key]
    if not isinstance(value, str) or len(value) > max_len or not value.isprintable() \
            or (pattern and not pattern.fullmatch(value)):
        rule = f"match {pattern.pattern}" if pattern else f"be printable text of at most {max_len} chars"
        bad(f"{where}{key} must {rule}, got {shown_json(value)}")
    return value


def parse_reading(obj, where, now):
    """A checked reading dict from one JSON object; `where` prefixes messages (e.g. 'readings[3].')."""
    if not isinstance(obj, dict):
        bad(f"{where.rstrip('.') or 'body'} must be a JSON object with {', '.join(READING_KEYS)}")
    unknown = sorted(set(obj) - set(READING_KEYS))
    if unknown:
        bad(f"{where}{unknown[0]} is not a reading field (allowed: {', '.join(READING_KEYS)})")
    missing = [k for k in REQUIRED_READING_KEYS if k not in obj]
    if missing:
        bad(f"{where}{missing[0]} is missing")
    reading = {
        "node": json_text(obj, "node", where, NAME_RE),
        "quantity": json_text(obj, "quantity", where, QUANTITY_RE),
        "value": json_number(obj, "value", where),
        "unit": json_text(obj, "unit", where, max_len=MAX_UNIT_CHARS),
        "ts": now,
        "seq": None,
    }
    if obj.get("ts") is not None:
        reading["ts"] = json_ts(obj, where, now)
    if obj.get("seq") is not None:
        reading["seq"] = json_counter(obj, "seq", where)
    return reading


def json_ts(obj, where, now):
    ts = json_number(obj, "ts", where)
    if not MIN_TS <= ts <= now + MAX_FUTURE_S:
        bad(f"{where}ts must be unix seconds between {MIN_TS} and now + 1 day, got {ts:.0f}"
            " (MicroPython counts from 2000: add 946684800)")
    return ts


def json_counter(obj, key, where):
    """A boot or seq number: an integer 0..2**63-1 (what SQLite's INTEGER holds)."""
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        bad(f"{where}{key} must be an integer 0..2**63-1, got {shown_json(value)}")
    return value


def parse_record(obj, where, now, ts_of_up):
    """A node's reading record -> {"boot", "seq", "ep", "ts", "values": {quantity: number}}.
    A record without ts (the node had no NTP time) has up, its uptime when it was taken:
    ts_of_up(up) turns that into unix seconds."""
    if not isinstance(obj, dict):
        bad(f"{where.rstrip('.')} must be a JSON object with boot, seq, ts or up, and the quantities")
    for key in ("boot", "seq"):
        if key not in obj:
            bad(f"{where}{key} is missing")
    record = {"boot": json_counter(obj, "boot", where), "seq": json_counter(obj, "seq", where),
              # the node's epoch: new when its boot count starts over (a re-flash)
              "ep": json_counter(obj, "ep", where) if obj.get("ep") is not None else None}
    if obj.get("ts") is not None:
        record["ts"] = json_ts(obj, where, now)
    elif obj.get("up") is not None:
        up = json_number(obj, "up", where)
        if not 0 <= up <= MAX_UP_S:
            bad(f"{where}up must be seconds since boot 0..{MAX_UP_S}, got {up:.0f}")
        record["ts"] = ts_of_up(up)
    else:
        bad(f"{where}ts or up is missing")
    if "err" in obj and not isinstance(obj["err"], dict):
        bad(f"{where}err must be a JSON object (sensor: problem), got {shown_json(obj['err'])}")
    values = {}
    for key in obj:
        if key in RECORD_KEYS or key in DIAGNOSTIC_KEYS:
            continue
        if not QUANTITY_RE.fullmatch(key):
            bad(f"{where}{shown_json(key)} is neither a record field ({', '.join(RECORD_KEYS)})"
                f" nor a quantity name matching {QUANTITY_RE.pattern}")
        values[key] = json_number(obj, key, where)
    record["values"] = values
    return record


def record_rows(node, record, units):
    """The rows of one record: one per quantity."""
    return [{"node": node, "quantity": quantity, "value": value, "unit": units.get(quantity, ""),
             "ts": record["ts"], "boot": record["boot"], "seq": record["seq"], "ep": record.get("ep")}
            for quantity, value in record["values"].items()]


def parse_units(units, where="units"):
    """{"temperature": "°C", ...} -> the same dict, checked."""
    if not isinstance(units, dict):
        bad(f"{where} must be a JSON object (quantity: unit)")
    for quantity, unit in units.items():
        if not QUANTITY_RE.fullmatch(quantity):
            bad(f"{where}: {shown_json(quantity)} must match {QUANTITY_RE.pattern}")
        if not isinstance(unit, str) or len(unit) > MAX_UNIT_CHARS or not unit.isprintable():
            bad(f"{where}.{quantity} must be printable text of at most {MAX_UNIT_CHARS} chars,"
                f" got {shown_json(unit)}")
    return units


def parse_node_batch(body, now):
    """A node's batch {"node", "up", "units", "readings": [record, ...]} -> rows to store."""
    unknown = sorted(set(body) - set(BATCH_KEYS))
    if unknown:
        bad(f"{unknown[0]} is not a batch field (allowed: {', '.join(BATCH_KEYS)})")
    if "node" not in body:
        bad("node is missing")
    node = json_text(body, "node", "", NAME_RE)
    node_up = None
    if body.get("up") is not None:
        node_up = json_number(body, "up", "")
        if not 0 <= node_up <= MAX_UP_S:
            bad(f"up must be the node's seconds since boot 0..{MAX_UP_S}, got {node_up:.0f}")
    units = parse_units(body.get("units", {}))
    records = body.get("readings")
    if not isinstance(records, list) or not 1 <= len(records) <= MAX_BATCH:
        bad(f"readings must be a list of 1..{MAX_BATCH} records")

    def ts_of_up(up):
        # Taken (node_up - up) seconds before the node sent it; a node that did not say
        # its uptime now, or a record claiming a later uptime (another boot), is dated
        # when it arrived.
        if node_up is not None and node_up >= up:
            return now - (node_up - up)
        return now

    rows = []
    for i, obj in enumerate(records):
        rows += record_rows(node, parse_record(obj, f"readings[{i}].", now, ts_of_up), units)
    return rows


def parse_json_body(raw):
    """A request's or message's bytes -> the parsed JSON, None if it is not JSON; 400 if it
    nests deeper than MAX_JSON_DEPTH (json.loads itself raises RecursionError past ~1000)."""
    try:
        body = json.loads(raw)
        too_deep = not depth_within(body, MAX_JSON_DEPTH)
    except RecursionError:
        too_deep = True
    except ValueError:      # also UnicodeDecodeError and ints past 4300 digits
        return None
    if too_deep:
        bad(f"body nests deeper than {MAX_JSON_DEPTH} levels of [ and {{")
    return body


def depth_within(value, limit):
    """Whether lists and objects in `value` nest at most `limit` deep (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (list, dict)):
            if depth > limit:
                return False
            stack.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict)
                                                        else value))
    return True


def parse_readings_body(body, now):
    """POST /api/readings' parsed JSON (None if it was not JSON) -> a list of checked readings."""
    if body is None:
        bad("body must be a JSON object or a list of them")
    if isinstance(body, dict) and "readings" in body:
        return parse_node_batch(body, now)
    if not isinstance(body, list):
        return [parse_reading(body, "", now)]
    if not 1 <= len(body) <= MAX_BATCH:
        bad(f"a batch holds 1..{MAX_BATCH} readings, got {len(body)}")
    # All checked before any is stored: a batch is stored whole or not at all.
    return [parse_reading(obj, f"readings[{i}].", now) for i, obj in enumerate(body)]
