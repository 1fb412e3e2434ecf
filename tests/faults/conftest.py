"""The fault-injection suite (issue 7: no reading lost; make faults).

Each scenario adds one row to the session's table (fault_table): produced,
delivered, duplicates dropped, lost, dropped by a full queue (reported),
result. At the end of the session the table goes to build/faults.json and
is printed; a scenario that fails before it has its row gets an ERROR row,
so the table always names every scenario that ran.
(tests/conftest.py marks everything here `faults` and `vm`.)
"""
import pytest

from upynode_cli.build import fetch_and_build
from upynode_cli.project import BUILD
from upynode_vboard import faults

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
                       "duplicates dropped": "-", "lost": "-", "dropped by a full queue (reported)": "-",
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
