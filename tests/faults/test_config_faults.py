"""Hostile config.json files (issue 7): 1,000 against the firmware's config
module under CPython, and a sample of them booted on the virtual board, where
each must end in setup mode with the reason on the console, the access point
up, no secret shown and no reset loop. Both are rows of the fault table:
"produced" is the files tried, "delivered" those that ended as they should,
"lost" those that did not.
"""
import importlib.util
import os
import re
import time

import pytest

from helpers import HOME_AP
from upynode_vboard import faults

HERE = os.path.dirname(os.path.abspath(__file__))


def _fuzz():
    """tests/unit/test_config_fuzz.py: the generator, the checker and SAMPLES."""
    path = os.path.join(HERE, "..", "unit", "test_config_fuzz.py")
    spec = importlib.util.spec_from_file_location("config_fuzz", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


fuzz = _fuzz()
POLL_S = 5  # setupmode.POLL_S
BATCH = 4   # boards booted at once: setup mode mostly sleeps


def table_row(scenario, produced, problems):
    return {"scenario": scenario, "produced": produced, "delivered": produced - len(problems),
            "duplicates dropped": 0, "lost": len(problems), "lost, reported": 0,
            "result": "ok" if not problems else "FAIL", "problems": problems[:10]}


def test_a_thousand_hostile_configs_on_cpython(fault_table):
    n, hows, problems = fuzz.check_many(1000)
    fault_table.add(table_row("hostile configs (CPython)", n, problems))
    assert n == 1000 and not problems, "\n".join(problems[:20])


def expected_line(data, tmp_path):
    """The console line setup mode must show for this file: the message the
    CPython config module gives loading it. MicroPython's json words its
    syntax errors its own way, reads NaN as no JSON at all, and parses
    nesting without recursion (CPython's stops at its recursion limit), so
    for those the line names the file's fault, not the same words."""
    (tmp_path / "config.json").write_bytes(data)
    cwd = os.getcwd()
    os.chdir(str(tmp_path))
    try:
        fuzz.config.load()
    except fuzz.config.ConfigError as e:
        msg = str(e)
    else:
        raise AssertionError("the sample is valid")
    finally:
        os.chdir(cwd)
    if msg.startswith("config.json is not valid JSON") or b"NaN" in data:
        return r"^setup mode: config: (config\.json is not valid JSON|.*: expected a finite number)"
    if "nested more than" in msg:
        return r"^setup mode: config: .*nested more than 5 levels deep$"
    return "^" + re.escape("setup mode: config: " + msg) + "$"


def test_a_sample_of_hostile_configs_ends_in_setup_mode_on_the_virtual_board(make_vboard, fault_table, tmp_path):
    problems = []
    samples = fuzz.SAMPLES
    for i in range(0, len(samples), BATCH):
        boards = []
        for name, data in samples[i:i + BATCH]:
            vb = make_vboard(aps=HOME_AP)
            with open(os.path.join(vb.board, "config.json"), "wb") as f:
                f.write(data)
            boards.append((name, data, vb.start()))
        for name, data, vb in boards:
            try:
                vb.wait_for(expected_line(data, tmp_path), timeout=60)
                vb.wait_for(r'^setup: access point "upynode-', timeout=30)
            except AssertionError as e:
                problems.append("%s: %s" % (name, str(e).splitlines()[0]))
        time.sleep(POLL_S * 2 + 1)  # two rereads of config.json: a crash there meant a reset loop
        for name, data, vb in boards:
            out = vb.output()
            vb.stop()
            if vb.boots != 1 or "Traceback" in out or "main: restarting" in out:
                problems.append("%s: not waiting in setup mode (%d boots): %s" % (name, vb.boots, out[-300:]))
            if fuzz.S in out or "ZQwrpw1" in out:
                problems.append("%s: a secret on the console" % name)
            if not (vb.state("ap") or {}).get("active"):
                problems.append("%s: the access point is down" % name)
    fault_table.add(table_row("hostile configs (VM, %d boots)" % len(samples), len(samples), problems))
    assert not problems, "\n".join(problems)
