"""The fault-injection suite (issue 7: no reading lost; make faults).

Each scenario adds one row to the session's table (fault_table): produced,
delivered, duplicates dropped, lost, lost and reported (with a reason),
result. At the end of the session the table goes to build/faults.json and
is printed; a scenario that fails before it has its row gets an ERROR row,
so the table always names every scenario that ran.
(tests/conftest.py marks everything here `faults` and `vm`.)
"""
import pytest

from upynode_cli.build import fetch_and_build
from upynode_cli.project import BUILD
from upynode_vboard import faults

from helpers import NODE_ID, node_config

TABLE = faults.Table()
TABLE_PATH = BUILD / "faults.json"


@pytest.fixture(scope="session")
def fault_table():
    """The table: fault_table.add(faults.row(...)) -> the row."""
    return TABLE


@pytest.fixture(scope="session")
def board_build(tmp_path_factory):
    """The board as `upynode build` makes it from lib/ now (2 s), for this
    suite's virtual boards and power cuts: a build/board older than the
    firmware would test the wrong code."""
    out = tmp_path_factory.mktemp("faultboard")
    fetch_and_build(out)
    return str(out)


@pytest.fixture
def fault_broker():
    """mosquitto that a scenario may kill, restart and freeze."""
    b = faults.FaultBroker()
    b.start()
    yield b
    b.stop()


@pytest.fixture
def collector(fault_broker):
    """What the MQTT receivers got from the virtual node: state and backlog, QoS 1."""
    c = faults.Collector(fault_broker.port, NODE_ID)
    yield c
    c.close()


def fault_config(port, **over):
    """The virtual node for a scenario: every second, fast timeouts and
    backoff so that a fault and its recovery fit in seconds, no NTP."""
    over.setdefault("mqtt", {})
    over["mqtt"] = dict({"timeout_s": 2, "keepalive": 10}, **over["mqtt"])
    over.setdefault("retry", {"min_s": 1, "max_s": 4})
    over.setdefault("ntp", {"host": ""})
    return node_config(port, **over)


def assert_ok(row, *boards):
    """The scenario's row is ok; if not, say why with the end of the node's console."""
    if row["result"] != "ok":
        tail = "\n".join("\n".join(vb.lines[-40:]) for vb in boards)
        raise AssertionError("%s: %s\n%s\nnode console (end):\n%s" % (
            row["scenario"], row["result"], "\n".join(row["problems"]), tail))


def pytest_runtest_setup(item):
    TABLE.current = item.name


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and "fault_table" in getattr(item, "fixturenames", ()):
        mine = [r for r in TABLE.rows if r.get("test") == item.name]
        if not mine:
            why = str(call.excinfo.value).strip().splitlines() if call.excinfo else []
            TABLE.add({"scenario": item.name, "test": item.name, "produced": "-", "delivered": "-",
                       "duplicates dropped": "-", "lost": "-", "lost, reported": "-",
                       "result": "ERROR", "problems": [(why[0] if why else rep.when)[:300]]})
        else:
            for r in mine:
                if r["result"] == "ok":  # its delivery was fine, something else the test checks was not
                    r["result"] = "FAIL"
                    why = str(call.excinfo.value).strip().splitlines() if call.excinfo else [rep.when]
                    r["problems"].append((why[0] if why else rep.when)[:300])


def pytest_sessionfinish(session):
    if TABLE.rows:
        TABLE.write(TABLE_PATH)


def pytest_terminal_summary(terminalreporter):
    if TABLE.rows:
        terminalreporter.section("fault suite (%s)" % TABLE_PATH)
        terminalreporter.write_line(TABLE.format())
