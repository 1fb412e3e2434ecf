"""`upynode flash`: write a MicroPython firmware image with esptool.

Everything that can be checked without the chip is checked first (port,
file, image header, --chip against the image); then esptool detects the chip
and only a chip that matches the image is erased and written.
"""
import errno
import os
import struct

from . import CliError, port_must_exist, say

ESP_IMAGE_MAGIC = 0xE9       # every ESP8266 (v1) and ESP32-family image
ESP8266_V2_MAGIC = 0xEA      # ESP8266 "v2" images (an OTA-style header)
ROM_BAUD = 115200            # the ROM bootloader always syncs at this rate
# Where MicroPython's combined .bin goes (micropython.org download pages).
OFFSETS = {"esp8266": 0x0, "esp32": 0x1000}


def add_arguments(p):
    p.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0")
    p.add_argument("--firmware", required=True, metavar="FILE.bin",
                   help="MicroPython firmware image from micropython.org/download")
    p.add_argument("--chip", choices=sorted(OFFSETS),
                   help="expected chip (default: read from the image)")
    p.add_argument("--baud", type=int, default=460800,
                   help="transfer baud rate (default 460800; one retry at 115200)")
    p.add_argument("--connect-attempts", type=int, default=7, metavar="N",
                   help="esptool connection attempts (default 7)")


def image_chip(path):
    """The chip family an image is built for, from its header ('esp8266', 'esp32', ...).

    Both families start with 0xE9. ESP32-family images carry a 16-byte
    extended header after the 8-byte common one: chip id (u16) at byte 12,
    4 reserved zero bytes at 19..22 and a 0/1 "hash appended" flag at byte
    23 (the same test esptool's image-info makes, plus the reserved bytes).
    An ESP8266 image has its first segment header there instead.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(24)
    except FileNotFoundError:
        raise CliError("firmware file not found: %s" % path)
    except IsADirectoryError:
        raise CliError("firmware path is a directory, not a .bin file: %s" % path)
    except OSError as e:
        raise CliError("cannot read %s: %s" % (path, e.strerror))
    if not head:
        raise CliError("%s is empty, not a firmware image" % path)
    if head[0] == ESP8266_V2_MAGIC:
        return "esp8266"
    if head[0] != ESP_IMAGE_MAGIC or len(head) < 24:
        raise CliError("%s is not an ESP firmware image (first byte 0x%02x, expected 0x%02x); "
                       "download a .bin from micropython.org/download" % (path, head[0], ESP_IMAGE_MAGIC))
    chip_id = struct.unpack_from("<H", head, 12)[0]
    if head[19:23] == b"\0\0\0\0" and head[23] in (0, 1):
        from esptool.targets import ROM_LIST

        for rom in ROM_LIST:
            if rom.IMAGE_CHIP_ID == chip_id:
                return rom.CHIP_NAME.lower().replace("-", "")
    return "esp8266"


def check_port_free(port):
    """Open the port exclusively, as esptool will, to name a busy port before we start."""
    import serial

    try:
        s = serial.Serial(port, ROM_BAUD, exclusive=True, timeout=0)
    except serial.SerialException as e:
        msg = str(e)
        if "exclusively lock" in msg or getattr(e, "errno", None) == errno.EBUSY:
            raise CliError("port %s is busy: close the other program using it "
                           "(a serial monitor, mpremote, another upynode)" % port)
        if getattr(e, "errno", None) == errno.EACCES:
            raise CliError("no permission to open %s: add yourself to the 'dialout' group "
                           "(sudo usermod -aG dialout $USER) and log in again" % port)
        raise CliError("cannot open %s: %s" % (port, msg))
    s.close()


def first_line(e):
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def detect(port, attempts):
    """Connect at the ROM baud and return esptool's loader for the detected chip."""
    from esptool.cmds import detect_chip
    from esptool.util import FatalError

    try:
        return detect_chip(port, ROM_BAUD, connect_attempts=attempts)
    except (FatalError, OSError) as e:
        raise CliError("no ESP chip answered on %s: %s (hold the FLASH/BOOT button while "
                       "plugging in if the board has no auto-reset)" % (port, first_line(e)))


def write_image(esp, baud, chip, path):
    """Stub, baud, erase, write, reset: esptool's own steps and progress output."""
    from esptool.cmds import attach_flash, erase_flash, reset_chip, run_stub, write_flash

    esp = run_stub(esp)
    if baud != ROM_BAUD:
        esp.change_baud(baud)
    attach_flash(esp)
    erase_flash(esp)
    write_flash(esp, [(OFFSETS[chip], path)], flash_size="detect", compress=True)
    reset_chip(esp, "hard-reset")


def run(args):
    want = image_chip(args.firmware)
    if want not in OFFSETS:
        raise CliError("%s is an %s image; this tool flashes ESP8266 and ESP32 only"
                       % (args.firmware, want.upper()))
    if args.chip and args.chip != want:
        raise CliError("--chip %s, but %s is an %s image" % (args.chip, args.firmware, want.upper()))
    port_must_exist(args.port)
    check_port_free(args.port)

    from esptool.util import FatalError

    bauds = [args.baud] + ([ROM_BAUD] if args.baud != ROM_BAUD else [])
    for i, baud in enumerate(bauds):
        esp = detect(args.port, args.connect_attempts)
        try:
            found = esp.CHIP_NAME.lower().replace("-", "")
            if found != want:
                raise CliError("the board on %s is an %s but %s is an %s image: nothing was written"
                               % (args.port, esp.CHIP_NAME, args.firmware, want.upper()))
            say("upynode: writing %s (%d bytes) at 0x%x, %d baud"
                % (args.firmware, os.path.getsize(args.firmware), OFFSETS[want], baud))
            write_image(esp, baud, want, args.firmware)
            say("upynode: done; the board is restarting into MicroPython")
            return 0
        except (FatalError, OSError) as e:
            if i + 1 < len(bauds):
                say("upynode: failed at %d baud (%s); retrying at %d" % (baud, first_line(e), bauds[i + 1]))
                continue
            raise CliError("flashing failed: %s" % first_line(e))
        finally:
            try:
                esp._port.close()
            except Exception:
                pass
