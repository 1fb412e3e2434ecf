"""A small stand-in for Home Assistant's REST API, on 127.0.0.1 only.

What it does as HA does (developers.home-assistant.io, REST API):
  POST /api/states/<entity_id>   Authorization: Bearer <token>, body {"state", "attributes"}
                                 -> 201 when it creates the entity, 200 when it updates it;
                                 400 for an invalid entity id or a missing state
  GET  /api/states/<entity_id>   -> 200 with the state object, 404 if unknown
  anything without the right Bearer token -> 401
It also records every request (method, path, headers, raw body) for the tests.

    with HaStandin(token="abc") as ha:
        ha.url, ha.states, ha.requests
"""
import json
import re
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# homeassistant.core.valid_entity_id
ENTITY_RE = re.compile(r"^(?!.+__)(?!_)[\da-z_]+(?<!_)\.(?!_)[\da-z_]+(?<!_)$")


class HaStandin:
    def __init__(self, token, host="127.0.0.1", port=0):
        assert host in ("127.0.0.1", "localhost")
        self.token = token
        self.states = {}
        self.requests = []
        self.lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self, code, obj):
                raw = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(raw)
                self.close_connection = True

            def _handle(self, method):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                with standin.lock:
                    standin.requests.append({"method": method, "path": self.path,
                                             "headers": dict(self.headers.items()), "body": body})
                if self.headers.get("Authorization") != "Bearer " + standin.token:
                    return self._answer(401, {"message": "401: Unauthorized"})
                m = re.fullmatch(r"/api/states/([^/?]+)", self.path)
                if not m:
                    return self._answer(404, {"message": "Not found"})
                eid = m.group(1)
                if method == "GET":
                    with standin.lock:
                        st = standin.states.get(eid)
                    if st is None:
                        return self._answer(404, {"message": "Entity not found."})
                    return self._answer(200, st)
                if not ENTITY_RE.match(eid):
                    return self._answer(400, {"message": "Invalid entity ID specified."})
                try:
                    data = json.loads(body)
                except ValueError:
                    return self._answer(400, {"message": "Invalid JSON specified."})
                if not isinstance(data, dict) or data.get("state") is None:
                    return self._answer(400, {"message": "No state specified."})
                now = datetime.now(timezone.utc).isoformat()
                st = {"entity_id": eid, "state": str(data["state"]),
                      "attributes": data.get("attributes") or {},
                      "last_changed": now, "last_updated": now}
                with standin.lock:
                    new = eid not in standin.states
                    standin.states[eid] = st
                self._answer(201 if new else 200, st)

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.url = "http://%s:%d" % self.server.server_address[:2]
        self.thread = None

    def set_state(self, entity_id, state, attributes=None):
        with self.lock:
            self.states[entity_id] = {"entity_id": entity_id, "state": state,
                                      "attributes": attributes or {}}

    def start(self):
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


if __name__ == "__main__":
    import sys
    s = HaStandin(sys.argv[1] if len(sys.argv) > 1 else "token", port=8123)
    print("HA stand-in on", s.url)
    s.server.serve_forever()
