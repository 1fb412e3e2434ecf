"""A real Home Assistant for the tests (issue 10): installed into its own
virtualenv under build/, seeded so that it starts ready with no browser, and
run on 127.0.0.1 against a given MQTT broker.

    python -m upynode_vboard.homeassistant install   # build/ha-venv, cached
    python -m upynode_vboard.homeassistant run --mqtt-port 1883

Home Assistant 2024.3.3 is the last release that installs on Python 3.11.
It installs with its own homeassistant/package_constraints.txt (inside the
wheel) as constraints, josepy<2 (acme from hass-nabucasa uses
josepy.ComparableX509: with josepy 2 every HTTP request answers 500), and the
requirements that the manifests of the integrations it sets up name: the
default ones, the ones configuration.yaml names, and mqtt with every entity
platform its config entry forwards to (camera imports stream: numpy, ha-av).
HA then runs with --skip-pip and never reaches a package index.

The config dir holds what HA's onboarding would have written (.storage):
an owner user with a password and a long-lived access token (the refresh
token is ours; the access token is the HS256 JWT that HA would sign with the
refresh token's jwt_key), onboarding done, and the mqtt config entry (broker
settings can no longer be given in YAML).
"""
import ast
import base64
import hashlib
import hmac
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from datetime import datetime, timezone
from pathlib import Path

from upynode_cli.project import BUILD

from .services import free_port, terminate

VERSION = "2024.3.3"
VENV = BUILD / "ha-venv"
WHEELS = BUILD / "ha-wheel"
STAMP_NAME = ".upynode-installed"
# Beyond the manifests: josepy<2 (see above). paho-mqtt==1.6.1 comes from
# the mqtt manifest and the constraints; named here too so the pin is seen.
EXTRA = ["josepy<2", "paho-mqtt==1.6.1"]
# What configuration.yaml sets up besides the defaults; `config` gives the
# websocket commands for the entity and device registries.
CONFIGURED = ["http", "api", "websocket_api", "config", "logger", "mqtt"]
# The camera platform of mqtt imports stream, which its manifest does not say.
IMPORTED = ["stream"]
# Integrations that bootstrap sets up unless told otherwise (bootstrap.py).
BOOTSTRAP_SETS = ("CORE_INTEGRATIONS", "LOGGING_INTEGRATIONS", "DEFAULT_INTEGRATIONS")
OWNER = "owner"
OWNER_PASSWORD = "upynode-test"


class InstallError(RuntimeError):
    """Home Assistant cannot be installed here; the message says why."""


def python311():
    """A Python 3.11 to make HA's virtualenv with (HA 2024.3 needs >=3.11,<3.12)."""
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    exe = shutil.which("python3.11")
    if not exe:
        raise InstallError("Home Assistant %s needs Python 3.11, and there is no python3.11 on PATH" % VERSION)
    return exe


def venv_python(venv=VENV):
    return str(Path(venv) / "bin" / "python")


def _run(argv, what, log):
    log("homeassistant: " + what)
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-15:])
        raise InstallError("%s failed (exit %d):\n%s" % (what, r.returncode, tail))
    return r


def _wheel(log):
    WHEELS.mkdir(parents=True, exist_ok=True)
    found = sorted(WHEELS.glob("homeassistant-%s-*.whl" % VERSION))
    if not found:
        _run([python311(), "-m", "pip", "download", "-q", "--no-deps", "-d", str(WHEELS),
              "homeassistant==" + VERSION], "downloading homeassistant %s" % VERSION, log)
        found = sorted(WHEELS.glob("homeassistant-%s-*.whl" % VERSION))
    if not found:
        raise InstallError("pip download left no homeassistant %s wheel in %s" % (VERSION, WHEELS))
    return found[0]


def _manifest_requirements(wheel):
    """The requirements of every integration HA will set up or import, with
    their dependencies and after_dependencies, from the wheel's manifests."""
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())

        def manifest(domain):
            p = "homeassistant/components/%s/manifest.json" % domain
            return json.loads(z.read(p)) if p in names else None

        tree = ast.parse(z.read("homeassistant/bootstrap.py"))
        start = list(CONFIGURED) + list(IMPORTED)
        for node in tree.body:
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) in BOOTSTRAP_SETS:
                start += [e.value for e in node.value.elts if isinstance(e, ast.Constant)]
        const = z.read("homeassistant/components/mqtt/const.py").decode()
        plat = const[const.index("\nPLATFORMS"):]
        plat = plat[:plat.index("]")]
        start += [w.split(".")[1].lower() for w in plat.split() if w.startswith("Platform.")]
        constraints = z.read("homeassistant/package_constraints.txt").decode()

        seen, reqs, todo = set(), set(), start
        while todo:
            domain = todo.pop()
            if domain in seen:
                continue
            seen.add(domain)
            m = manifest(domain)
            if m is None:
                continue
            reqs.update(m.get("requirements", []))
            todo += m.get("dependencies", []) + m.get("after_dependencies", [])
    return sorted(reqs), constraints


def install(venv=VENV, log=print):
    """Install HA into venv unless the stamp says it is there; returns the
    venv's python. Raises InstallError with the reason when it cannot."""
    venv = Path(venv)
    stamp = venv / STAMP_NAME
    want = "homeassistant==%s\n" % VERSION
    if stamp.exists() and stamp.read_text().startswith(want) and Path(venv_python(venv)).exists():
        return venv_python(venv)
    t0 = time.monotonic()
    wheel = _wheel(log)
    reqs, constraints = _manifest_requirements(wheel)
    cfile = WHEELS / "package_constraints.txt"
    cfile.write_text(constraints)
    if not Path(venv_python(venv)).exists():
        _run([python311(), "-m", "venv", str(venv)], "making the virtualenv %s" % venv, log)
    pins = [r for r in EXTRA if r.split("=")[0].split("<")[0] not in {q.split("=")[0] for q in reqs}]
    _run([venv_python(venv), "-m", "pip", "install", "-q", "-c", str(cfile), str(wheel), *reqs, *pins],
         "installing homeassistant %s and %d requirements (a few minutes, once)" % (VERSION, len(reqs) + len(pins)),
         log)
    _run([venv_python(venv), "-c", "import homeassistant.components.mqtt, homeassistant.components.stream, josepy; "
          "import homeassistant.components.camera"], "checking the install", log)
    stamp.write_text(want + "\n".join(reqs + pins) + "\n")
    log("homeassistant: installed in %.0f s" % (time.monotonic() - t0))
    return venv_python(venv)


# --- the config dir -------------------------------------------------------

def _b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _jwt_hs256(claims, key):
    head = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(key.encode(), ("%s.%s" % (head, body)).encode(), hashlib.sha256).digest()
    return "%s.%s.%s" % (head, body, _b64url(sig))


def _store(path, key, data, version=1, minor=1):
    path.write_text(json.dumps({"version": version, "minor_version": minor, "key": key, "data": data}, indent=1))


def seed(config_dir, http_port, mqtt_port, python=None):
    """Write a config dir for HA that has done onboarding; returns the
    long-lived access token of its owner."""
    cdir = Path(config_dir)
    storage = cdir / ".storage"
    storage.mkdir(parents=True, exist_ok=True)
    (cdir / "configuration.yaml").write_text(
        "homeassistant:\n"
        "  name: upynode test\n"
        "  latitude: 52.37\n  longitude: 4.89\n  elevation: 0\n"
        "  unit_system: metric\n  time_zone: UTC\n  currency: EUR\n  country: NL\n"
        "http:\n  server_host: 127.0.0.1\n  server_port: %d\n"
        "api:\nwebsocket_api:\nconfig:\n"
        "logger:\n  default: warning\n" % http_port)

    now = datetime.now(timezone.utc)
    user_id, cred_id, rt_id = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex
    jwt_key = secrets.token_hex(64)
    life_s = 10 * 365 * 24 * 3600
    _store(storage / "auth", "auth", {
        "users": [{"id": user_id, "group_ids": ["system-admin"], "is_owner": True, "is_active": True,
                   "name": "Owner", "system_generated": False, "local_only": False}],
        "groups": [{"id": "system-admin", "name": "Administrators"},
                   {"id": "system-users", "name": "Users"},
                   {"id": "system-read-only", "name": "Read Only"}],
        "credentials": [{"id": cred_id, "user_id": user_id, "auth_provider_type": "homeassistant",
                         "auth_provider_id": None, "data": {"username": OWNER}}],
        "refresh_tokens": [{"id": rt_id, "user_id": user_id, "client_id": None,
                            "client_name": "upynode tests", "client_icon": None,
                            "token_type": "long_lived_access_token", "created_at": now.isoformat(),
                            "access_token_expiration": float(life_s), "token": secrets.token_hex(64),
                            "jwt_key": jwt_key, "last_used_at": None, "last_used_ip": None,
                            "expire_at": None, "credential_id": None, "version": VERSION}],
    })
    # The owner can log in to the UI (for a developer looking at a test's HA):
    # the homeassistant auth provider keeps base64 of a bcrypt hash.
    if python:
        r = subprocess.run([python, "-c", "import base64,bcrypt,sys;sys.stdout.write(base64.b64encode("
                            "bcrypt.hashpw(sys.argv[1].encode(), bcrypt.gensalt(rounds=4))).decode())",
                            OWNER_PASSWORD], capture_output=True, text=True)
        if r.returncode == 0:
            _store(storage / "auth_provider.homeassistant", "auth_provider.homeassistant",
                   {"users": [{"username": OWNER, "password": r.stdout}]})
    _store(storage / "onboarding", "onboarding", {"done": ["user", "core_config", "analytics", "integration"]},
           version=4)
    _store(storage / "core.config_entries", "core.config_entries", {"entries": [{
        "entry_id": uuid.uuid4().hex, "version": 1, "minor_version": 1, "domain": "mqtt",
        "title": "127.0.0.1", "source": "user", "unique_id": None, "disabled_by": None,
        "data": {"broker": "127.0.0.1", "port": mqtt_port, "discovery": True},
        "options": {}, "pref_disable_new_entities": False, "pref_disable_polling": False}]})
    iat = int(time.time())
    return _jwt_hs256({"iss": rt_id, "iat": iat, "exp": iat + life_s}, jwt_key)


# --- running it -----------------------------------------------------------

class HomeAssistant:
    """HA on 127.0.0.1:<port> with config_dir, talking to the broker on
    127.0.0.1:<mqtt_port>. start() returns once the API answers and mqtt is
    connected (HA's birth message); stop(); restart().

        .url, .token, .log_path, .api(method, path, body), .state(entity_id),
        .ws(type, **fields), .log_lines()
    """

    def __init__(self, config_dir, mqtt_port, port=None, python=None):
        self.python = python or install()
        self.config_dir = Path(config_dir)
        self.mqtt_port = mqtt_port
        self.port = port or free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.token = seed(self.config_dir, self.port, mqtt_port, self.python)
        self.log_path = self.config_dir / "home-assistant.log"
        self.proc = None
        self.start_s = None  # how long the last start() took

    def start(self, timeout=90):
        from .mqttwatch import Watch
        birth = Watch(self.mqtt_port, ("homeassistant/status",))
        try:
            t0 = time.monotonic()
            self._out = open(self.config_dir / "stdout.log", "ab")
            self.proc = subprocess.Popen(
                [self.python, "-m", "homeassistant", "--config", str(self.config_dir), "--skip-pip"],
                stdout=self._out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
            deadline = t0 + timeout
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError("Home Assistant exited with status %s; see %s"
                                       % (self.proc.returncode, self.config_dir / "stdout.log"))
                if time.monotonic() > deadline:
                    raise RuntimeError("Home Assistant did not start in %d s; see %s" % (timeout, self.log_path))
                try:
                    cfg = self.api("GET", "/api/config")
                    if "mqtt" in cfg.get("components", []) and any(p == b"online" for _, p, _ in birth.messages):
                        break
                except (OSError, ValueError):
                    pass
                time.sleep(0.25)
            self.start_s = time.monotonic() - t0
            self.start_log = self.log_lines()  # what HA logged while starting
            return self
        finally:
            birth.close()

    def stop(self):
        terminate(self.proc, grace=30)
        self.proc = None
        if getattr(self, "_out", None):
            self._out.close()
            self._out = None

    def restart(self, timeout=90):
        self.stop()
        return self.start(timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # REST (developers.home-assistant.io/docs/api/rest)
    def api(self, method, path, body=None, token=None):
        """JSON of a REST call; HTTPError for anything but 2xx."""
        return json.loads(self.api_text(method, path, body, token) or "null")

    def api_text(self, method, path, body=None, token=None):
        """The body of a REST call as text (POST /api/template answers text)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": "Bearer " + (self.token if token is None else token),
            "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.read().decode()

    def state(self, entity_id):
        """The state object, or None when HA has no such entity."""
        try:
            return self.api("GET", "/api/states/" + entity_id)
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    def states(self):
        return {s["entity_id"]: s for s in self.api("GET", "/api/states")}

    # websocket (developers.home-assistant.io/docs/api/websocket)
    def ws(self, type_, **fields):
        """The result of one websocket command, e.g. ws("config/device_registry/list")."""
        import websocket  # websocket-client
        conn = websocket.create_connection("ws://127.0.0.1:%d/api/websocket" % self.port, timeout=10)
        try:
            assert json.loads(conn.recv())["type"] == "auth_required"
            conn.send(json.dumps({"type": "auth", "access_token": self.token}))
            answer = json.loads(conn.recv())
            if answer["type"] != "auth_ok":
                raise RuntimeError("websocket auth: %r" % answer)
            conn.send(json.dumps(dict(fields, id=1, type=type_)))
            answer = json.loads(conn.recv())
            if not answer.get("success"):
                raise RuntimeError("websocket %s: %r" % (type_, answer.get("error")))
            return answer["result"]
        finally:
            conn.close()

    def log_lines(self):
        try:
            return self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(prog="python -m upynode_vboard.homeassistant", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("install", help="install HA %s into %s (cached)" % (VERSION, VENV))
    run = sub.add_parser("run", help="seed a config dir and run HA until Ctrl-C")
    run.add_argument("--mqtt-port", type=int, default=1883)
    run.add_argument("--port", type=int, default=8123)
    run.add_argument("--config-dir", default=str(BUILD / "ha-config"))
    a = ap.parse_args(argv)
    try:
        python = install()
    except InstallError as e:
        sys.exit("homeassistant: cannot install Home Assistant %s: %s" % (VERSION, e))
    if a.cmd == "install":
        print(python)
        return
    ha = HomeAssistant(a.config_dir, a.mqtt_port, port=a.port, python=python).start()
    print("Home Assistant on %s (started in %.1f s); owner %s / %s\ntoken: %s"
          % (ha.url, ha.start_s, OWNER, OWNER_PASSWORD, ha.token))
    import signal
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))  # stop HA too, not only this wrapper
    try:
        ha.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        ha.stop()


if __name__ == "__main__":
    main()
