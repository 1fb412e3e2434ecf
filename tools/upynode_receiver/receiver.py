"""The reference receiver: a Flask app that stores sensor nodes' readings in SQLite.

Endpoints
  GET  /update/API_key=<key>/mac=<mac>/field=<n>/data=<value>   the 2016 ESP8266 tutorial's URL
  POST /api/readings       a node's batch: {node, up, units: {quantity: unit}, readings: [record, ...]},
                           record = {boot, seq, ts | up, <quantity>: number, ..., err?};
                           or one reading or a list: {node, quantity, value, unit, ts?, seq?}
  GET  /api/readings       ?node=&field=&quantity=&since=&limit=   (JSON list, oldest first)
  GET  /api/held           ?node=   the (boot, seq) of every reading held of that node
  GET  /                   nodes, their latest readings, and 24 h charts (Chart.js)
"""
import hashlib
import hmac
import json
import math
import os
import threading
import time
from pathlib import Path

from flask import (Blueprint, Flask, abort, current_app, g, jsonify, render_template, request,
                   send_from_directory)
from werkzeug.exceptions import HTTPException, TooManyRequests

from upynode_cli.project import BUILD

from . import chartjs, store
from .validate import (MAX_FIELD, QUANTITY_RE, bad, int_in_range, parse_field, parse_mac,
                       parse_held_query, parse_json_body, parse_number_text, parse_query,
                       parse_readings_body)

DEFAULT_DB = BUILD / "receiver.sqlite3"
DEFAULT_FIELDS = "1=temperature,2=humidity,3=light"

MAX_BODY_BYTES = 64 * 1024      # a batch of ~500 queued readings fits; far more than one node sends
CONNECTION_LIMIT = 500          # waitress: open connections (its default, 100, let 200 slow clients lock nodes out)
CHANNEL_TIMEOUT_S = 30         # waitress: a connection silent this long is closed (a node's request takes < 1 s)
MAX_URL_CHARS = 1024            # tutorial URLs are ~100 chars
DEFAULT_RATE_LIMIT = 60         # requests a minute per API key; a node sends one or two a cycle
CHART_WINDOW_S = 24 * 3600
CHART_MAX_READINGS = 100000


# --- configuration ---------------------------------------------------------------

def load_api_keys(keys_file=None, env=os.environ, bound=()):
    """API keys from UPYNODE_API_KEYS=k1,k2, a JSON file and `bound` (--key specs).

    The file holds ["k", ...], {"api_keys": [...]}, or {"api_keys": {"k": ["node-a", ...]}}:
    a key bound to node names writes only their readings; a key without names (null or [])
    writes any node's. A --key spec is "KEY" or "KEY=node-a,node-b". -> [key or (key, [nodes])]."""
    keys = [k.strip() for k in env.get("UPYNODE_API_KEYS", "").split(",") if k.strip()]
    keys_file = keys_file or env.get("UPYNODE_KEYS_FILE")
    if keys_file:
        loaded = json.loads(Path(keys_file).read_text(encoding="utf-8"))
        if isinstance(loaded, dict):
            loaded = loaded.get("api_keys")
        if isinstance(loaded, dict):
            if not all(isinstance(k, str) and k.strip() and (v is None or isinstance(v, list)
                                                             and all(isinstance(n, str) for n in v))
                       for k, v in loaded.items()):
                raise ValueError(f'{keys_file}: expected {{"api_keys": {{"key": ["node name", ...] or null}}}}')
            keys += [(k.strip(), v) if v else k.strip() for k, v in loaded.items()]
        elif not isinstance(loaded, list) or not all(isinstance(k, str) and k.strip() for k in loaded):
            raise ValueError(f"{keys_file}: expected a list of non-empty strings, or {{\"api_keys\": [...]}}")
        else:
            keys += [k.strip() for k in loaded]
    for spec in bound:
        key, sep, names = spec.partition("=")
        nodes = [n.strip() for n in names.split(",") if n.strip()]
        if not key.strip() or (sep and not nodes):
            raise ValueError(f"--key {spec!r}: expected KEY or KEY=node-a,node-b")
        keys.append((key.strip(), nodes) if nodes else key.strip())
    return keys


def unbound_keys(api_keys):
    """How many of the keys may write any node's readings."""
    return sum(1 for k in api_keys if isinstance(k, str))


def parse_field_map(spec):
    """'1=temperature,2=humidity' -> {1: 'temperature', 2: 'humidity'}."""
    fields = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        number, sep, name = item.partition("=")
        number, name = number.strip(), name.strip()
        if not (sep and int_in_range(number, 1, MAX_FIELD) and QUANTITY_RE.fullmatch(name)):
            raise ValueError(f"bad field mapping {item!r}: expected <1..{MAX_FIELD}>=<quantity>")
        fields[int(number)] = name
    return fields



# --- per request: the database connection and the API key --------------------------------

def db():
    """This request's SQLite connection, opened on first use and closed by close_db."""
    if "db" not in g:
        g.db = store.connect(current_app.config["DB_PATH"])
    return g.db


def close_db(_exc):
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()


def key_digest(key):
    # Keys are compared as SHA-256 digests: all the same length, so the comparison's time
    # does not tell a key's length either.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def require_key(candidate):
    """Abort with 401 unless `candidate` is one of the app's API keys, and with 429 when that
    key (or, for unknown keys, the client's address) has used up its rate. -> the node names
    the key may write, or None for any."""
    limiter = current_app.config["RATE_LIMITER"]
    if not candidate:
        abort(401, description="missing API key (header X-Api-Key or Authorization: Bearer <key>)")
    digest = key_digest(candidate)
    # Compare with every key, no early exit: timing says nothing about which or how many match.
    valid, nodes = False, None
    for key, names in current_app.config["API_KEYS"]:
        match = hmac.compare_digest(digest, key)
        valid |= match
        nodes = names if match else nodes
    if not valid:
        # Guessing keys costs the guesser's address its rate too.
        limiter.take(("unknown key from", request.remote_addr), "from this address with unknown keys")
        abort(401, description="unknown API key")
    limiter.take(digest)
    return nodes


def require_node(nodes, node):
    """Abort with 403 unless a key bound to `nodes` (None: any) may write `node`'s readings."""
    if nodes is not None and node not in nodes:
        abort(403, description=f"this API key may not write the readings of node {node!r}")


class RateLimiter:
    """A token bucket per client: `per_minute` requests in a burst, then one every
    60/per_minute s. take() aborts with 429 and Retry-After when the bucket is empty.
    per_minute 0: no limit."""

    MAX_CLIENTS = 10000     # past this, full buckets are forgotten (they are the default)

    def __init__(self, per_minute, clock=time.monotonic):
        self.per_minute = per_minute
        self.clock = clock
        self.buckets = {}           # client -> (tokens, when counted)
        self.lock = threading.Lock()    # waitress serves from several threads

    def take(self, client, what="with this key"):
        if not self.per_minute:
            return
        rate = self.per_minute / 60
        with self.lock:
            now = self.clock()
            tokens, then = self.buckets.get(client, (self.per_minute, now))
            tokens = min(self.per_minute, tokens + (now - then) * rate)
            if tokens < 1:
                self.buckets[client] = (tokens, now)
                wait_s = math.ceil((1 - tokens) / rate)
                raise TooManyRequests(description=f"more than {self.per_minute} requests a minute"
                                      f" {what}: retry in {wait_s} s", retry_after=wait_s)
            self.buckets[client] = (tokens - 1, now)
            if len(self.buckets) > self.MAX_CLIENTS:
                self.buckets = {c: (t, w) for c, (t, w) in self.buckets.items()
                                if t + (now - w) * rate < self.per_minute}


def key_from_headers(headers):
    """The key sent as X-Api-Key, else as Authorization: Bearer <key>; '' if neither."""
    auth = headers.get("Authorization", "")
    bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    return headers.get("X-Api-Key") or bearer


# --- the 2016 tutorial's URL: GET /update/API_key=.../mac=.../field=.../data=... ---------------

tutorial = Blueprint("tutorial", __name__)


@tutorial.get("/update/API_key=<key>/mac=<mac>/field=<field>/data=<data>")
def update(key, mac, field, data):
    nodes = require_key(key)
    reading = {"node": parse_mac(mac), "field": parse_field(field),
               "value": parse_number_text(data, "data")}
    require_node(nodes, reading["node"])
    # The tutorial's nodes send only a field number; the app's field map names the quantity.
    reading["quantity"] = current_app.config["FIELD_QUANTITIES"].get(
        reading["field"], f"field{reading['field']}")
    reading["ts"] = now = time.time()
    store.insert_readings(db(), [reading], received=now)
    return jsonify(stored=1, node=reading["node"], quantity=reading["quantity"])


@tutorial.get("/update/<path:rest>")
def malformed_update(rest):
    bad("expected /update/API_key=<key>/mac=<mac>/field=<n>/data=<value>")


# --- the JSON API: POST and GET /api/readings ----------------------------------------------

api = Blueprint("api", __name__, url_prefix="/api")


@api.post("/readings")
def post_readings():
    nodes = require_key(key_from_headers(request.headers))
    now = time.time()
    # Parsed whatever the Content-Type: tiny HTTP clients on nodes don't always send one.
    readings = parse_readings_body(parse_json_body(request.get_data(cache=False)), now)
    for node in sorted({r["node"] for r in readings}):
        require_node(nodes, node)
    stored, duplicates = store.insert_readings(db(), readings, received=now)
    # 200, not 201, when nothing new was stored: a node replaying its queue after a lost answer.
    return jsonify(stored=stored, duplicates=duplicates), 201 if stored else 200


@api.get("/readings")
def get_readings():
    return jsonify(store.query_readings(db(), **parse_query(request.args)))


@api.get("/held")
def get_held():
    node = parse_held_query(request.args)
    return jsonify(node=node, held=store.held_readings(db(), node))


# --- the page: GET / and the Chart.js bundle it loads -------------------------------------

page = Blueprint("page", __name__)


@page.get("/")
def index():
    now = time.time()
    return render_template("index.html", nodes=store.latest_per_node(db()),
                           charts=chart_series(db(), since=now - CHART_WINDOW_S), now=now,
                           window_s=CHART_WINDOW_S, format_ts=format_ts)


@page.get("/vendor/chart.umd.min.js")
def chart_js():
    directory = current_app.config["CHARTJS_DIR"]
    if not chartjs.bundle_path(directory).is_file():
        abort(404, description=f"Chart.js is not fetched: run {chartjs.FETCH_COMMAND}")
    return send_from_directory(directory, chartjs.BUNDLE_NAME, max_age=3600)


def chart_series(conn, since):
    """{quantity: {"unit": u, "series": {node: [[ts, value], ...]}}}, sorted by quantity,
    as the page's script draws it: one chart per quantity, one line per node."""
    charts = {}
    for r in store.query_readings(conn, since=since, limit=CHART_MAX_READINGS):
        chart = charts.setdefault(r["quantity"], {"unit": "", "series": {}})
        chart["unit"] = r["unit"] or chart["unit"]
        chart["series"].setdefault(r["node"], []).append([r["ts"], r["value"]])
    return dict(sorted(charts.items()))


def format_ts(ts):
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(ts))


# --- limits and errors, for every URL -------------------------------------------------------

def refuse_oversized():
    # A before_request hook runs before routing errors are raised, so a huge URL is 413
    # whatever it names.
    if len(request.full_path) > MAX_URL_CHARS:
        abort(413, description=f"URL longer than {MAX_URL_CHARS} characters")
    if (request.content_length or 0) > MAX_BODY_BYTES:
        abort(413, description=f"body larger than {MAX_BODY_BYTES} bytes")


def json_error(exc):
    """Every error, 404s included, as {"error": "<what is wrong>"}: nodes log the text."""
    response = jsonify(error=exc.description)
    response.status_code = exc.code
    if exc.code == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    if getattr(exc, "retry_after", None) is not None:
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


# --- the app ---------------------------------------------------------------------------------

def create_app(db_path=DEFAULT_DB, api_keys=(), field_quantities=None, chartjs_dir=chartjs.VENDOR_DIR,
               rate_limit=DEFAULT_RATE_LIMIT):
    """The receiver's Flask app; field_quantities maps tutorial field numbers to quantity
    names (default DEFAULT_FIELDS); rate_limit: requests a minute per API key (0: none)."""
    store.init_db(db_path)
    app = Flask(__name__)
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        DB_PATH=str(db_path),
        CHARTJS_DIR=str(chartjs_dir),
        # (digest, frozenset of node names or None): keys bound to nodes write only theirs
        API_KEYS=[(key_digest(k), None) if isinstance(k, str) else (key_digest(k[0]), frozenset(k[1]))
                  for k in api_keys if k],
        RATE_LIMITER=RateLimiter(rate_limit),
        FIELD_QUANTITIES=(parse_field_map(DEFAULT_FIELDS) if field_quantities is None
                          else dict(field_quantities)),
    )
    app.teardown_appcontext(close_db)
    app.before_request(refuse_oversized)
    app.register_error_handler(HTTPException, json_error)
    for blueprint in (tutorial, api, page):
        app.register_blueprint(blueprint)
    return app
