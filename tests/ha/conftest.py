"""A real Home Assistant (upynode_vboard.homeassistant) and mosquitto for the
tests in this folder, one of each for the session, and what the tests ask
of them: states over REST, the registries over the websocket, HA's log.

Each test names its own node (config node_id), so that the entities,
retained discovery and devices of one test never count in another.

The session skips these tests, saying why, only when Home Assistant cannot
be installed here (no Python 3.11, no package index); in CI (CI set) it
fails instead: CI must never pass without them.
"""
import json
import os
import re
import time

import pytest

from helpers import HOME_AP, node_config, run_in_vm
from upynode_vboard import brokers
from upynode_vboard import homeassistant as hass


@pytest.fixture(scope="session")
def ha_broker():
    """mosquitto for HA and the nodes; restart() keeps its port and loses
    its retained messages, as a broker without persistence does."""
    b = brokers.Broker()
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def home_assistant(ha_broker, tmp_path_factory):
    try:
        python = hass.install()
    except hass.InstallError as e:
        why = "Home Assistant %s cannot be installed here: %s" % (hass.VERSION, e)
        if os.environ.get("CI"):
            pytest.fail(why + " (CI: these tests must run)")
        pytest.skip(why)
    ha = Ha(tmp_path_factory.mktemp("homeassistant"), ha_broker.port, python=python)
    ha.start()
    yield ha
    ha.stop()


@pytest.fixture
def ha(home_assistant):
    """The session's HA, with its log read from where this test began."""
    if home_assistant.proc is None or home_assistant.proc.poll() is not None:
        home_assistant.start()  # a test before stopped or lost it
    home_assistant.mark()
    return home_assistant


class Ha(hass.HomeAssistant):
    """HomeAssistant with what the tests ask it."""

    def mark(self):
        self.log_from = len(self.log_lines())

    def new_log(self):
        return self.log_lines()[getattr(self, "log_from", 0):]

    def problems_about(self, node_id, quantities=()):
        """WARNING and ERROR records of HA's log since mark() that are about
        the node: they name it, or come from the MQTT integration or from
        rendering its templates (whose messages name only the quantity)."""
        out, rec = [], None
        for line in self.new_log():
            m = re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ (\w+) \(\w+\) \[([\w.]+)\] ", line)
            if m:
                rec = [line] if m.group(1) in ("WARNING", "ERROR", "CRITICAL") else None
                if rec is not None:
                    out.append(rec)
            elif rec is not None:
                rec.append(line)  # a traceback's lines
        found = []
        for rec in out:
            text = "\n".join(rec)
            if (node_id in text or "components.mqtt" in text or "helpers.template" in text
                    or any("'%s'" % q in text for q in quantities)):
                found.append(text)
        return found

    def wait_state(self, entity_id, pred=lambda s: s is not None, timeout=20):
        """The state object once pred(state object or None) holds."""
        t_end = time.monotonic() + timeout
        while True:
            st = self.state(entity_id)
            if pred(st):
                return st
            if time.monotonic() > t_end:
                raise AssertionError("%s in Home Assistant after %d s: %s" % (entity_id, timeout, json.dumps(st)))
            time.sleep(0.2)

    def entities(self, node_id):
        """Entity registry entries of the node's entities (HA names them
        <domain>.<node_id>_<name>), and of any of their duplicates."""
        return [e for e in self.ws("config/entity_registry/list")
                if e["entity_id"].split(".", 1)[1].startswith(node_id.lower())]

    def entity(self, entity_id):
        """One entity registry entry in full (options: display precision)."""
        return self.ws("config/entity_registry/get", entity_id=entity_id)

    def devices(self, node_id):
        return [d for d in self.ws("config/device_registry/list")
                if any(i[1] == node_id for i in d["identifiers"])]

    def call(self, domain, service, **data):
        return self.api("POST", "/api/services/%s/%s" % (domain, service), data)


def numeric(st):
    try:
        float(st["state"])
        return True
    except (TypeError, ValueError, KeyError):
        return False


@pytest.fixture
def ha_node(ha, ha_broker, make_vboard, request):
    """ha_node(suffix="", world=None, **config) -> (node_id, stopped VBoard)
    for a node
    on the home WiFi reporting to the session's broker and HA; its id is the
    test's name (HA ids: lower case)."""
    def make(suffix="", world=None, **over):
        node_id = "t_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[5:][:28].strip("_") + suffix
        over.setdefault("node_id", node_id)
        over.setdefault("homeassistant", {"url": ha.url, "token": ha.token})
        cfg = node_config(ha_broker.port, **over)
        vb = make_vboard(cfg, aps=HOME_AP, **(world or {}))
        vb.config = cfg  # to change and write_config() again
        return cfg["node_id"], vb
    return make


@pytest.fixture
def ha_vm(board_build, tmp_path):
    """ha_vm(config dict, code) -> (results, log lines): code run in the
    MicroPython VM on the built board's lib/, with CFG (the config, parsed
    as the node parses it), out(x) for results and log(s) for log lines."""
    from upynode import config

    def run(user, code, timeout=60):
        state = tmp_path / "vmstate"
        state.mkdir(exist_ok=True)
        cfg = config.parse(json.dumps(user))
        src = ("import gc, json, time\n"
               "def log(s):\n    print('LOG ' + s)\n"
               "def out(x):\n    print('@' + json.dumps(x))\n"
               "CFG = json.loads(%r)\n" % json.dumps(cfg)) + code
        p = run_in_vm(src, state, path=[os.path.join(board_build, "lib")], cwd=tmp_path, timeout=timeout)
        text = p.stdout.decode("utf-8", "replace")
        assert p.returncode == 0, text + p.stderr.decode("utf-8", "replace")
        return ([json.loads(ln[1:]) for ln in text.splitlines() if ln.startswith("@")],
                [ln[4:] for ln in text.splitlines() if ln.startswith("LOG ")])
    return run
