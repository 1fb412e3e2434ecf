"""`upynode ports`: the serial ports pyserial sees, with the boards named."""
from serial.tools import list_ports

# The USB-serial chips on the boards the tutorials use.
KNOWN = {
    (0x10C4, 0xEA60): "CP210x (NodeMCU v2/v1.0, most ESP32 DevKits)",
    (0x1A86, 0x7523): "CH340 (Wemos/LOLIN D1 mini, NodeMCU v3 'LoLin')",
}


def add_arguments(p):
    p.add_argument("--all", action="store_true",
                   help="also list ports without USB ids (ttyS*, Bluetooth, ...)")


def describe(port):
    if port.vid is None:
        return port.description or ""
    ids = "%04x:%04x" % (port.vid, port.pid)
    name = KNOWN.get((port.vid, port.pid))
    return "%s  %s" % (ids, name or port.description or "unknown USB device")


def run(args):
    ports = sorted(list_ports.comports(), key=lambda p: p.device)
    if not args.all:
        ports = [p for p in ports if p.vid is not None]
    if not ports:
        print("no USB serial ports found (plug the board in; check the cable carries data)")
        return 0
    for p in ports:
        print("%-16s %s" % (p.device, describe(p)))
    known = [p for p in ports if (p.vid, p.pid) in KNOWN]
    if len(known) == 1:
        print("\nlikely board: --port %s" % known[0].device)
    return 0
