"""SQLite storage of readings.

One row per quantity of a reading. WAL mode lets the page read while a node writes.
A reading is identified by (node, ep, boot, seq): the unique index on (node, ep, boot,
seq, quantity) makes replaying a node's queued readings idempotent. ep, the node's
epoch, is new when its boot count starts over (a re-flash): without it the readings of
its second life were dropped as duplicates of its first. Rows from the per-quantity JSON
body and the tutorial URL have no boot (NULL); rows from before epochs have none either.
"""
import sqlite3
from pathlib import Path

SCHEMA_VERSION = 3      # 1: unique (node, seq); 2: boot column, unique (node, boot, seq, quantity);
                        # 3: ep column, unique (node, ep, boot, seq, quantity)

TABLE = """
CREATE TABLE IF NOT EXISTS readings (
    id       INTEGER PRIMARY KEY,
    node     TEXT    NOT NULL,          -- a node's name; the mac for tutorial nodes
    quantity TEXT    NOT NULL,          -- e.g. temperature
    field    INTEGER,                   -- tutorial endpoint's field number, else NULL
    value    REAL    NOT NULL,
    unit     TEXT    NOT NULL DEFAULT '',
    ts       REAL    NOT NULL,          -- unix seconds of the measurement
    seq      INTEGER,                   -- node's sequence number, NULL if none sent
    received REAL    NOT NULL,          -- unix seconds when this server stored it
    boot     INTEGER,                   -- node's boot counter, NULL if none sent
    ep       INTEGER                    -- node's epoch (a new one when boot starts over), or NULL
);
"""
INDEXES = (
    # A missing boot counts as one value (-1), so a per-quantity body's (node, seq) repeats
    # are still dropped; NULL seqs never collide (SQLite treats NULLs as distinct), so
    # readings without seq are all kept.
    "CREATE UNIQUE INDEX IF NOT EXISTS readings_identity"
    " ON readings (node, ifnull(ep, -1), ifnull(boot, -1), seq, quantity)",
    "CREATE INDEX IF NOT EXISTS readings_ts ON readings (ts)",
    # the page's "latest reading per node and quantity"
    "CREATE INDEX IF NOT EXISTS readings_node_quantity_ts ON readings (node, quantity, ts)",
)

COLUMNS = ("id", "node", "quantity", "field", "value", "unit", "ts", "ep", "boot", "seq")
SELECT_READINGS = f"SELECT {', '.join(COLUMNS)} FROM readings"
DEFAULT_LIMIT = 1000


def connect(db_path):
    """Open a connection; one per request, as sqlite3 connections are not shared across threads."""
    conn = sqlite3.connect(str(db_path), timeout=10)
    conn.row_factory = sqlite3.Row
    return conn


def init_db(db_path):
    """Create the file and its tables, or bring an older file's schema up to date keeping its
    rows, and switch it to WAL (a persistent setting of the file)."""
    Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    conn = connect(db_path)
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise RuntimeError(f"{db_path}: could not switch to WAL (got {mode!r})")
        # One transaction: a second process starting on the same file waits, and a
        # migration that fails half-way leaves the file as it was.
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(TABLE)
            columns = {row["name"] for row in conn.execute("PRAGMA table_info(readings)")}
            if "boot" not in columns:
                # A version 1 file: its rows were unique on (node, seq), so they are unique
                # on the new key too.
                conn.execute("ALTER TABLE readings ADD COLUMN boot INTEGER")
            if "ep" not in columns:
                # Version 2 (or older): its rows keep NULL, one epoch of their own.
                conn.execute("ALTER TABLE readings ADD COLUMN ep INTEGER")
            conn.execute("DROP INDEX IF EXISTS readings_node_seq")
            conn.execute("DROP INDEX IF EXISTS readings_reading")  # version 2's key, without ep
            for statement in INDEXES:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()


def insert_readings(conn, readings, received):
    """Store readings (dicts) in one transaction; return (stored, duplicates)."""
    stored = 0
    with conn:
        for r in readings:
            cur = conn.execute(
                "INSERT INTO readings (node, quantity, field, value, unit, ts, ep, boot, seq, received)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (r["node"], r["quantity"], r.get("field"), r["value"], r.get("unit", ""),
                 r["ts"], r.get("ep"), r.get("boot"), r.get("seq"), received),
            )
            stored += cur.rowcount
    return stored, len(readings) - stored


def held_readings(conn, node):
    """[[boot, seq], ...] of every reading of `node` stored with a seq, in order: what the
    receiver holds of a node, to compare with what it took (a gap is a reading lost)."""
    rows = conn.execute(
        "SELECT DISTINCT boot, seq FROM readings WHERE node = ? AND seq IS NOT NULL"
        " ORDER BY boot, seq", (node,))
    return [[row["boot"], row["seq"]] for row in rows]


def held(db_path, node):
    """held_readings() of the database file at db_path (for tests and scripts)."""
    conn = connect(db_path)
    try:
        return held_readings(conn, node)
    finally:
        conn.close()


def query_readings(conn, node=None, field=None, quantity=None, since=None, limit=DEFAULT_LIMIT):
    """The newest `limit` readings that match, oldest first."""
    where, args = [], []
    for column, value in (("node", node), ("field", field), ("quantity", quantity)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    if since is not None:
        where.append("ts >= ?")
        args.append(since)
    sql = SELECT_READINGS
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql = f"SELECT * FROM ({sql} ORDER BY ts DESC, id DESC LIMIT ?) ORDER BY ts, id"
    return [dict(row) for row in conn.execute(sql, (*args, limit))]


def latest_per_node(conn):
    """{node: [latest reading of each quantity]} for the overview table."""
    rows = conn.execute(
        f"{SELECT_READINGS} r"
        " WHERE id = (SELECT id FROM readings WHERE node = r.node AND quantity = r.quantity"
        "             ORDER BY ts DESC, id DESC LIMIT 1)"
        " ORDER BY node, quantity"
    )
    nodes = {}
    for row in rows:
        nodes.setdefault(row["node"], []).append(dict(row))
    return nodes
