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
REQUIRED_READING_KEYS = ("node", "quantity", "value", "unit")
QUERY_KEYS = ("node", "field", "quantity", "since", "limit")


def bad(message):
    abort(400, description=message)


def shown(text):
    """A URL or query value as an error message quotes it."""
    return repr(text[:SHOWN_CHARS])


def shown_json(value):
    """A JSON value as an error message quotes it."""
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


# --- JSON bodies --------------------------------------------------------------------------

def json_number(obj, key, where):
    value = obj[key]
    # bool is an int in Python, but true/false are not readings.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
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
        "unit": json_text(obj, "unit", where, max_len=16),
        "ts": now,
        "seq": None,
    }
    if obj.get("ts") is not None:
        ts = json_number(obj, "ts", where)
        if not MIN_TS <= ts <= now + MAX_FUTURE_S:
            bad(f"{where}ts must be unix seconds between {MIN_TS} and now + 1 day, got {ts:.0f}"
                " (MicroPython counts from 2000: add 946684800)")
        reading["ts"] = ts
    if obj.get("seq") is not None:
        seq = obj["seq"]
        if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 2**63:
            bad(f"{where}seq must be an integer 0..2**63-1, got {shown_json(seq)}")
        reading["seq"] = seq
    return reading


def parse_readings_body(body, now):
    """POST /api/readings' parsed JSON (None if it was not JSON) -> a list of checked readings."""
    if body is None:
        bad("body must be a JSON object or a list of them")
    if not isinstance(body, list):
        return [parse_reading(body, "", now)]
    if not 1 <= len(body) <= MAX_BATCH:
        bad(f"a batch holds 1..{MAX_BATCH} readings, got {len(body)}")
    # All checked before any is stored: a batch is stored whole or not at all.
    return [parse_reading(obj, f"readings[{i}].", now) for i, obj in enumerate(body)]
