"""upynode flash and ports: argument handling and the errors, with no chip."""
import fcntl
import os
import pty
import struct
import types

import pytest

from helpers import cli, one_line_error  # noqa: F401
from upynode_cli import CliError, cmd_flash, cmd_ports
from upynode_cli.main import parser




def esp8266_image(path):
    # 0xE9, 1 segment, then the segment header: load address in IRAM, length.
    path.write_bytes(bytes([0xE9, 1, 0, 0x20]) + struct.pack("<III", 0x40100000, 0x40100000, 16)
                     + b"\xaa" * 16 + bytes(64))
    return path


def esp32_image(path, chip_id=0):
    # Common header, then the extended header: wp pin 0xEE, drive settings,
    # chip id, revisions, 4 reserved zeros, "hash appended" = 1.
    path.write_bytes(bytes([0xE9, 3, 2, 0x20]) + struct.pack("<I", 0x40080000)
                     + bytes([0xEE, 0, 0, 0]) + struct.pack("<HBHH", chip_id, 0, 0, 0xFFFF)
                     + bytes(4) + b"\x01" + bytes(64))
    return path


@pytest.fixture
def silent_pty():
    """A serial device with nothing behind it (no chip answers)."""
    m, s = pty.openpty()
    yield os.ttyname(s), s
    os.close(m)
    os.close(s)


def test_image_header_tells_the_chip(tmp_path):
    assert cmd_flash.image_chip(esp8266_image(tmp_path / "a.bin")) == "esp8266"
    assert cmd_flash.image_chip(esp32_image(tmp_path / "b.bin")) == "esp32"
    assert cmd_flash.image_chip(esp32_image(tmp_path / "c.bin", chip_id=9)) == "esp32s3"


def test_required_arguments():
    r = cli("flash", "--port", "/dev/null")
    assert r.returncode == 2 and "--firmware" in r.stderr
    r = cli("flash", "--firmware", "x.bin")
    assert r.returncode == 2 and "--port" in r.stderr
    r = cli("flash", "--port", "p", "--firmware", "f", "--chip", "esp8285")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_missing_firmware_file(tmp_path, silent_pty):
    one_line_error(cli("flash", "--port", silent_pty[0], "--firmware", tmp_path / "nope.bin"),
                   "not found", "nope.bin")


def test_text_file_is_not_firmware(tmp_path, silent_pty):
    f = tmp_path / "README.txt"
    f.write_text("hello, not a firmware\n")
    one_line_error(cli("flash", "--port", silent_pty[0], "--firmware", f),
                   "not an ESP firmware image", "0x68", "0xe9")


def test_empty_file_and_directory(tmp_path, silent_pty):
    (tmp_path / "empty.bin").write_bytes(b"")
    one_line_error(cli("flash", "--port", silent_pty[0], "--firmware", tmp_path / "empty.bin"), "empty")
    one_line_error(cli("flash", "--port", silent_pty[0], "--firmware", tmp_path), "directory")


def test_chip_option_must_match_image(tmp_path, silent_pty):
    one_line_error(cli("flash", "--port", silent_pty[0], "--chip", "esp8266",
                       "--firmware", esp32_image(tmp_path / "esp32.bin")),
                   "--chip esp8266", "ESP32 image")


def test_unsupported_chip_image(tmp_path, silent_pty):
    one_line_error(cli("flash", "--port", silent_pty[0],
                       "--firmware", esp32_image(tmp_path / "s3.bin", chip_id=9)), "ESP32S3")


def test_no_such_port(tmp_path):
    one_line_error(cli("flash", "--port", "/dev/ttyUSB-upynode-none",
                       "--firmware", esp8266_image(tmp_path / "fw.bin")),
                   "no such port", "/dev/ttyUSB-upynode-none")


def test_busy_port(tmp_path, silent_pty):
    dev, fd = silent_pty
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as mpremote or esptool hold it
    one_line_error(cli("flash", "--port", dev, "--firmware", esp8266_image(tmp_path / "fw.bin")),
                   "busy", dev)


def test_no_chip_behind_the_port(tmp_path, silent_pty):
    r = cli("flash", "--port", silent_pty[0], "--firmware", esp8266_image(tmp_path / "fw.bin"),
            "--connect-attempts", "1")
    one_line_error(r, "no ESP chip answered", silent_pty[0])
    assert "Connecting" in r.stdout  # esptool's own output is shown


# In-process, with esptool's chip replaced: what happens once a chip answers.
class FakeESP:
    def __init__(self, name):
        self.CHIP_NAME = name
        self._port = types.SimpleNamespace(close=lambda: None)


def args_for(*argv):
    return parser().parse_args(["flash", *map(str, argv)])


def test_wrong_chip_is_never_erased(tmp_path, silent_pty, monkeypatch):
    written = []
    monkeypatch.setattr(cmd_flash, "detect", lambda port, n: FakeESP("ESP32"))
    monkeypatch.setattr(cmd_flash, "write_image", lambda *a: written.append(a))
    with pytest.raises(CliError, match="is an ESP32 but .* is an ESP8266 image: nothing was written"):
        cmd_flash.run(args_for("--port", silent_pty[0], "--firmware", esp8266_image(tmp_path / "fw.bin")))
    assert written == []


def test_retries_once_at_115200(tmp_path, silent_pty, monkeypatch):
    from esptool.util import FatalError

    bauds = []

    def write_image(esp, baud, chip, path):
        bauds.append((baud, chip))
        if baud != 115200:
            raise FatalError("Timed out waiting for packet header")

    monkeypatch.setattr(cmd_flash, "detect", lambda port, n: FakeESP("ESP8266"))
    monkeypatch.setattr(cmd_flash, "write_image", write_image)
    assert cmd_flash.run(args_for("--port", silent_pty[0], "--firmware", esp8266_image(tmp_path / "f.bin"))) == 0
    assert bauds == [(460800, "esp8266"), (115200, "esp8266")]

    bauds.clear()
    monkeypatch.setattr(cmd_flash, "write_image",
                        lambda *a: bauds.append(a[1]) or (_ for _ in ()).throw(FatalError("boom\nmore")))
    with pytest.raises(CliError, match="^flashing failed: boom$"):
        cmd_flash.run(args_for("--port", silent_pty[0], "--firmware", esp8266_image(tmp_path / "f.bin")))
    assert bauds == [460800, 115200]


@pytest.mark.parametrize("chip, image, offset", [("ESP32", esp32_image, 0x1000),
                                                  ("ESP8266", esp8266_image, 0x0)])
def test_image_goes_to_the_chips_offset(tmp_path, silent_pty, monkeypatch, chip, image, offset):
    """What esptool's write_flash is given, with the rest of esptool's steps stubbed."""
    import esptool.cmds

    steps, writes = [], []
    for step in ("run_stub", "attach_flash", "erase_flash", "reset_chip"):
        monkeypatch.setattr(esptool.cmds, step, lambda esp, *a, _s=step, **k: steps.append(_s) or esp)
    monkeypatch.setattr(esptool.cmds, "write_flash", lambda esp, addr_data, **kw: writes.append(addr_data))
    monkeypatch.setattr(cmd_flash, "detect", lambda port, n: FakeESP(chip))
    fw = image(tmp_path / "fw.bin")
    assert cmd_flash.run(args_for("--port", silent_pty[0], "--firmware", fw, "--baud", 115200)) == 0
    assert writes == [[(offset, str(fw))]]
    assert steps == ["run_stub", "attach_flash", "erase_flash", "reset_chip"]


# -- ports -------------------------------------------------------------------
def fake_port(device, vid=None, pid=None, description="n/a"):
    return types.SimpleNamespace(device=device, vid=vid, pid=pid, description=description)


def test_ports_names_the_tutorial_boards(monkeypatch, capsys):
    monkeypatch.setattr(cmd_ports.list_ports, "comports", lambda: [
        fake_port("/dev/ttyUSB1", 0x1A86, 0x7523, "USB Serial"),
        fake_port("/dev/ttyUSB0", 0x10C4, 0xEA60, "CP2102 USB to UART Bridge Controller"),
        fake_port("/dev/ttyS0")])
    assert cmd_ports.run(parser().parse_args(["ports"])) == 0
    out = capsys.readouterr().out
    assert "/dev/ttyUSB0     10c4:ea60  CP210x" in out
    assert "/dev/ttyUSB1     1a86:7523  CH340" in out
    assert "ttyS0" not in out  # no USB ids: only with --all


def test_ports_runs():
    r = cli("ports", "--all")
    assert r.returncode == 0 and r.stderr == ""
