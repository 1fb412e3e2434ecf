"""The receiver as a separate process on 127.0.0.1 (waitress), for the
simulator and the tests."""
import os
import subprocess
import sys

from .services import free_port, terminate, wait_listening


class ReceiverProcess:
    def __init__(self, db, api_key, port=None, log_path=os.devnull):
        self.db, self.api_key, self.port = db, api_key, port or free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log_path = log_path
        self.proc = None

    def start(self, timeout=20):
        env = {k: v for k, v in os.environ.items() if not k.startswith("UPYNODE_")}
        env["UPYNODE_API_KEYS"] = self.api_key
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "upynode_receiver", "--port", str(self.port), "--db", self.db],
            env=env, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_listening(self.port, self.proc, timeout, "receiver")
        except RuntimeError:
            self.stop()
            raise
        return self

    def stop(self):
        terminate(self.proc)
        if self.proc:
            self.log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
