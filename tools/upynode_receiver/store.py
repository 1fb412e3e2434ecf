"""SQLite storage of readings.

WAL mode lets the page read while a node writes; the unique (node, seq) index
makes replaying a node's queued readings idempotent.
"""
import sqlite3
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    id       INTEGER PRIMARY KEY,
    node     TEXT    NOT NULL,          -- a node's name; the mac for tutorial nodes
    quantity TEXT    NOT NULL,          -- e.g. temperature
    field    INTEGER,                   -- tutorial endpoint's field number, else NULL
    value    REAL    NOT NULL,
    unit     TEXT    NOT NULL DEFAULT '',
    ts       REAL    NOT NULL,          -- unix seconds of the measurement
    seq      INTEGER,                   -- node's sequence number, NULL if none sent
    received REAL    NOT NULL           -- unix seconds when this server stored it
);
-- NULL seqs never collide (SQLite treats NULLs as distinct), so only real
-- (node, seq) repeats are dropped.
CREATE UNIQUE INDEX IF NOT EXISTS readings_node_seq ON readings (node, seq);
CREATE INDEX IF NOT EXISTS readings_ts ON readings (ts);
-- the page's "latest reading per node and quantity"
CREATE INDEX IF NOT EXISTS readings_node_quantity_ts ON readings (node, quantity, ts);
"""

COLUMNS = ("id", "node", "quantity", "field", "value", "unit", "ts", "seq")
SELECT_READINGS = f"SELECT {', '.join(COLUMNS)} FROM readings"
DEFAULT_LIMIT = 1000


def connect(db_path):
    """Open a connection; one per request, as sqlite3 connections are not shared across threads."""
    conn = sqlite3.connect(str(db_path), timeout=10)
    conn.row_factory = sqlite3.Row
    return conn


def init_db(db_path):
    """Create the file, its tables and switch it to WAL (a persistent setting of the file)."""
    Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    with connect(db_path) as conn:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise RuntimeError(f"{db_path}: could not switch to WAL (got {mode!r})")
        conn.executescript(SCHEMA)
    conn.close()


def insert_readings(conn, readings, received):
    """Store readings (dicts) in one transaction; return (stored, duplicates)."""
    stored = 0
    with conn:
        for r in readings:
            cur = conn.execute(
                "INSERT INTO readings (node, quantity, field, value, unit, ts, seq, received)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (node, seq) DO NOTHING",
                (r["node"], r["quantity"], r.get("field"), r["value"], r.get("unit", ""),
                 r["ts"], r.get("seq"), received),
            )
            stored += cur.rowcount
    return stored, len(readings) - stored


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
