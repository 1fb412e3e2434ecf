"""A real MQTT broker on 127.0.0.1 for the simulator and the tests.

mosquitto (what Home Assistant users run) where it is installed, else amqtt
from PyPI as the embedded fallback. amqtt has been seen to drop some QoS 0
messages of a burst from a client that disconnects right afterwards: the
callers count what arrives rather than assume it.
"""
import os
import shutil
import subprocess
import sys
import tempfile

from .services import free_port, terminate, wait_listening


def mosquitto_path():
    return shutil.which("mosquitto", path=os.environ.get("PATH", "") + ":/usr/sbin:/usr/local/sbin")


class Broker:
    """Start with start(); .port, .kind ("mosquitto" or "amqtt"); stop()."""

    def __init__(self, kind=None, port=None):
        self.kind = kind or ("mosquitto" if mosquitto_path() else "amqtt")
        self.port = port or free_port()
        self.proc = None
        self.dir = None

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="upynode-broker-")
        if self.kind == "mosquitto":
            conf = os.path.join(self.dir, "mosquitto.conf")
            with open(conf, "w") as f:
                f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"
                        "log_dest stderr\nlog_type error\nlog_type warning\n" % self.port)
            os.chmod(self.dir, 0o755)
            os.chmod(conf, 0o644)
            argv = [mosquitto_path(), "-c", conf]
        else:
            conf = os.path.join(self.dir, "amqtt.yaml")
            with open(conf, "w") as f:
                f.write("listeners:\n  default:\n    type: tcp\n    bind: 127.0.0.1:%d\n"
                        "auth:\n  allow-anonymous: true\n"
                        "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
                        "    allow_anonymous: true\n"
                        "  amqtt.plugins.sys.broker.BrokerSysPlugin:\n    sys_interval: 0\n" % self.port)
            exe = os.path.join(os.path.dirname(sys.executable), "amqtt")
            argv = [exe if os.path.exists(exe) else "amqtt", "-c", conf]
        self.log = open(os.path.join(self.dir, "broker.log"), "w")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        wait_listening(self.port, self.proc)
        return self

    def stop(self):
        terminate(self.proc)
        if self.dir:
            self.log.close()
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
