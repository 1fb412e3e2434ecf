"""Fixtures of the CLI tests."""
import os
import pty
import select
import time

import pytest

from helpers import upynode_exe


class Terminal:
    """`upynode ARGS` on a pty, as a person at a terminal runs it."""

    def __init__(self, *args, env=None):
        self.out = b""
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.environ.update(env or {})
            os.execv(upynode_exe(), [upynode_exe(), *map(str, args)])

    def read_until(self, marker, timeout=20):
        end = time.monotonic() + timeout
        while marker not in self.out and time.monotonic() < end:
            if select.select([self.fd], [], [], 0.2)[0]:
                try:
                    self.out += os.read(self.fd, 4096)
                except OSError:
                    break
        return marker in self.out

    def type(self, keys):
        os.write(self.fd, keys)

    def exit_code(self):
        _, status = os.waitpid(self.pid, 0)
        self.pid = None
        return os.waitstatus_to_exitcode(status)

    def close(self):
        if self.pid:
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


@pytest.fixture
def terminal():
    """terminal(*args, env=None) -> a Terminal, closed at the end of the test."""
    terms = []

    def start(*args, env=None):
        terms.append(Terminal(*args, env=env))
        return terms[-1]

    yield start
    for t in terms:
        t.close()
