"""The reference receiver: a Flask app that stores sensor nodes' readings in SQLite.

Endpoints
  GET  /update/API_key=<key>/mac=<mac>/field=<n>/data=<value>   the 2016 ESP8266 tutorial's URL
  POST /api/readings       one reading or a list: {node, quantity, value, unit, ts?, seq?}
  GET  /api/readings       ?node=&field=&quantity=&since=&limit=   (JSON list, oldest first)
  GET  /                   nodes, their latest readings, and 24 h charts (Chart.js)
"""
import hmac
import json
import math
import os
import re
import time
from pathlib import Path

from flask import Flask, abort, g, jsonify, render_template, request, send_from_directory
from werkzeug.exceptions import HTTPException

from . import chartjs, store

from upynode_cli.project import BUILD

DEFAULT_DB = BUILD / "receiver.sqlite3"
DEFAULT_FIELDS = "1=temperature,2=humidity,3=light"

MAX_BODY_BYTES = 64 * 1024      # a batch of ~500 queued readings fits; far more than one node sends
MAX_URL_CHARS = 1024            # tutorial URLs are ~100 chars
MAX_BATCH = 500
MAX_FIELD = 99
CHART_WINDOW_S = 24 * 3600
# Unix seconds before 2001-09-09 are refused: MicroPython's time.time() counts from 2000,
# so a node that forgot to convert would otherwise store readings dated in the 1990s.
MIN_TS = 1_000_000_000
MAX_FUTURE_S = 24 * 3600        # tolerate a node's clock running ahead, not a wrong year

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")      # node names (macs fit)
QUANTITY_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,31}")
MAC_RE = re.compile(r"[0-9A-Fa-f]{2}([:-]?)[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}")
FIELD_RE = re.compile(r"[0-9]{1,2}")
# What float() would accept minus its extras ("nan", "inf", "1_000", " 1", "0x1"...).
NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")
READING_KEYS = ("node", "quantity", "value", "unit", "ts", "seq")
QUERY_KEYS = ("node", "field", "quantity", "since", "limit")


# --- configuration ---------------------------------------------------------------

def load_api_keys(keys_file=None, env=os.environ):
    """API keys from a JSON file (["k", ...] or {"api_keys": [...]}) and/or UPYNODE_API_KEYS=k1,k2."""
    keys = [k.strip() for k in env.get("UPYNODE_API_KEYS", "").split(",") if k.strip()]
    keys_file = keys_file or env.get("UPYNODE_KEYS_FILE")
    if keys_file:
        loaded = json.loads(Path(keys_file).read_text(encoding="utf-8"))
        if isinstance(loaded, dict):
            loaded = loaded.get("api_keys")
        if not isinstance(loaded, list) or not all(isinstance(k, str) and k.strip() for k in loaded):
            raise ValueError(f"{keys_file}: expected a list of non-empty strings, or {{\"api_keys\": [...]}}")
        keys += [k.strip() for k in loaded]
    return keys


def parse_field_map(spec):
    """'1=temperature,2=humidity' -> {1: 'temperature', 2: 'humidity'}."""
    fields = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        number, sep, name = item.partition("=")
        number, name = number.strip(), name.strip()
        if not (sep and FIELD_RE.fullmatch(number) and 1 <= int(number) <= MAX_FIELD
                and QUANTITY_RE.fullmatch(name)):
            raise ValueError(f"bad field mapping {item!r}: expected <1..{MAX_FIELD}>=<quantity>")
        fields[int(number)] = name
    return fields


# --- validation: each raises a 400 whose text names what is wrong ---------------------

def bad(message):
    abort(400, description=message)


def parse_mac(text):
    if not MAC_RE.fullmatch(text):
        bad(f"mac must be 6 hex bytes like 5c:cf:7f:01:02:03, got {text[:40]!r}")
    digits = re.sub(r"[:-]", "", text).lower()
    # One spelling per node, so "5C-CF-..." and "5ccf..." are the same node.
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def parse_field(text, name="field"):
    if not FIELD_RE.fullmatch(text) or not 1 <= int(text) <= MAX_FIELD:
        bad(f"{name} must be an integer 1..{MAX_FIELD}, got {text[:40]!r}")
    return int(text)


def parse_number_text(text, name):
    value = float(text) if NUMBER_RE.fullmatch(text) else math.nan
    if not math.isfinite(value):    # also catches "1e999", which float() turns into inf
        bad(f"{name} must be a finite decimal number, got {text[:40]!r}")
    return value


def json_number(obj, key, where):
    value = obj[key]
    # bool is an int in Python, but true/false are not readings.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        bad(f"{where}{key} must be a finite number, got {json.dumps(value)[:40]}")
    return float(value)


def json_text(obj, key, where, pattern=None, max_len=64):
    value = obj[key]
    if not isinstance(value, str) or len(value) > max_len or not value.isprintable() \
            or (pattern and not pattern.fullmatch(value)):
        rule = f"match {pattern.pattern}" if pattern else f"be printable text of at most {max_len} chars"
        bad(f"{where}{key} must {rule}, got {json.dumps(value)[:40]}")
    return value


def parse_reading(obj, where, now):
    """A checked reading dict from one JSON object; `where` prefixes messages (e.g. 'readings[3].')."""
    if not isinstance(obj, dict):
        bad(f"{where.rstrip('.') or 'body'} must be a JSON object with {', '.join(READING_KEYS)}")
    unknown = sorted(set(obj) - set(READING_KEYS))
    if unknown:
        bad(f"{where}{unknown[0]} is not a reading field (allowed: {', '.join(READING_KEYS)})")
    missing = [k for k in ("node", "quantity", "value", "unit") if k not in obj]
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
            bad(f"{where}seq must be an integer 0..2**63-1, got {json.dumps(seq)[:40]}")
        reading["seq"] = seq
    return reading


# --- the app ---------------------------------------------------------------------------

def create_app(db_path=DEFAULT_DB, api_keys=(), field_quantities=None, chartjs_dir=chartjs.VENDOR_DIR):
    app = Flask(__name__)
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        DB_PATH=str(db_path),
        CHARTJS_DIR=str(chartjs_dir),
    )
    # Bytes, so compare_digest never meets non-ASCII str (it raises TypeError on those).
    key_bytes = [k.encode() for k in api_keys if k]
    fields = parse_field_map(DEFAULT_FIELDS) if field_quantities is None else dict(field_quantities)
    store.init_db(db_path)

    def db():
        if "db" not in g:
            g.db = store.connect(app.config["DB_PATH"])
        return g.db

    @app.teardown_appcontext
    def close_db(_exc):
        conn = g.pop("db", None)
        if conn is not None:
            conn.close()

    def require_key(candidate):
        if not candidate:
            abort(401, description="missing API key (header X-Api-Key or Authorization: Bearer <key>)")
        candidate = candidate.encode("utf-8", "surrogatepass")
        # Compare with every key, no early exit: timing says nothing about which or how many match.
        valid = False
        for key in key_bytes:
            valid |= hmac.compare_digest(candidate, key)
        if not valid:
            abort(401, description="unknown API key")

    @app.before_request
    def refuse_oversized():
        # Runs before routing errors are raised, so a huge URL is 413 whatever it names.
        if len(request.full_path) > MAX_URL_CHARS:
            abort(413, description=f"URL longer than {MAX_URL_CHARS} characters")
        if (request.content_length or 0) > MAX_BODY_BYTES:
            abort(413, description=f"body larger than {MAX_BODY_BYTES} bytes")

    @app.errorhandler(HTTPException)
    def json_error(exc):
        response = jsonify(error=exc.description)
        response.status_code = exc.code
        if exc.code == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.get("/update/API_key=<key>/mac=<mac>/field=<field>/data=<data>")
    def tutorial_update(key, mac, field, data):
        require_key(key)
        reading = {"node": parse_mac(mac), "field": parse_field(field),
                   "value": parse_number_text(data, "data")}
        reading["quantity"] = fields.get(reading["field"], f"field{reading['field']}")
        reading["ts"] = now = time.time()
        store.insert_readings(db(), [reading], received=now)
        return jsonify(stored=1, node=reading["node"], quantity=reading["quantity"])

    @app.get("/update/<path:rest>")
    def tutorial_malformed(rest):
        bad("expected /update/API_key=<key>/mac=<mac>/field=<n>/data=<value>")

    @app.post("/api/readings")
    def post_readings():
        auth = request.headers.get("Authorization", "")
        require_key(request.headers.get("X-Api-Key")
                    or (auth[7:].strip() if auth[:7].lower() == "bearer " else ""))
        # force: tiny HTTP clients on nodes don't always send Content-Type.
        body = request.get_json(force=True, silent=True)
        if body is None:
            bad("body must be a JSON object or a list of them")
        now = time.time()
        if isinstance(body, list):
            if not 1 <= len(body) <= MAX_BATCH:
                bad(f"a batch holds 1..{MAX_BATCH} readings, got {len(body)}")
            # All checked before any is stored: a batch is stored whole or not at all.
            readings = [parse_reading(obj, f"readings[{i}].", now) for i, obj in enumerate(body)]
        else:
            readings = [parse_reading(body, "", now)]
        stored, duplicates = store.insert_readings(db(), readings, received=now)
        return jsonify(stored=stored, duplicates=duplicates), 201 if stored else 200

    @app.get("/api/readings")
    def get_readings():
        args = request.args
        unknown = sorted(set(args) - set(QUERY_KEYS))
        if unknown:
            bad(f"unknown query parameter {unknown[0]!r} (allowed: {', '.join(QUERY_KEYS)})")
        limit = args.get("limit", "1000")
        if not re.fullmatch(r"[0-9]{1,5}", limit) or not 1 <= int(limit) <= 10000:
            bad(f"limit must be an integer 1..10000, got {limit[:40]!r}")
        return jsonify(store.query_readings(
            db(),
            node=args.get("node") or None,
            quantity=args.get("quantity") or None,
            field=parse_field(args["field"]) if args.get("field") else None,
            since=parse_number_text(args["since"], "since") if args.get("since") else None,
            limit=int(limit),
        ))

    @app.get("/")
    def index():
        now = time.time()
        # {quantity: {"unit": u, "series": {node: [[ts, value], ...]}}} for the page's script
        charts = {}
        for r in store.query_readings(db(), since=now - CHART_WINDOW_S, limit=100000):
            chart = charts.setdefault(r["quantity"], {"unit": "", "series": {}})
            chart["unit"] = r["unit"] or chart["unit"]
            chart["series"].setdefault(r["node"], []).append([r["ts"], r["value"]])
        return render_template("index.html", nodes=store.latest_per_node(db()),
                               charts=dict(sorted(charts.items())), now=now,
                               window_s=CHART_WINDOW_S, format_ts=format_ts)

    @app.get("/vendor/chart.umd.min.js")
    def chart_js():
        directory = Path(app.config["CHARTJS_DIR"])
        if not (directory / chartjs.BUNDLE_NAME).is_file():
            abort(404, description="Chart.js is not fetched: run python -m upynode_receiver.chartjs")
        return send_from_directory(directory, chartjs.BUNDLE_NAME, max_age=3600)

    return app


def format_ts(ts):
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(ts))
