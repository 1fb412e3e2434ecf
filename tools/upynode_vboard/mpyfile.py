"""What loading a .mpy file puts in RAM that ROMFS leaves in flash.

MicroPython (v1.28, py/persistentcode.c) loads a .mpy from a file by
copying each function's bytecode and each long str/bytes constant into the
heap. From ROMFS (a memory-mapped partition) it points at them instead;
everything else (raw-code records, child tables, function objects, the
module's tables, interned-name pool entries) costs the same either way.

The bench's 32-bit port has no ROMFS, so its 32-bit ROMFS figures are the
.mpy ones less what ROMFS saves. That saving is bytes, the same in 32 and 64
bits but for the GC's block size (16 B on a 32-bit chip, 32 B in the 64-bit
VM): these are the sizes to scale it by, read from the files themselves.

Format (.mpy version 6): header "M", 6, flags, small-int bits; n_qstr,
n_obj (varints); the qstrs; the constant objects; then the tree of raw
codes, each "kind_len" (varint: length << 3 | children << 2 | kind), its
data, and if it has children their count and the children.
"""

STR, BYTES, INT, FLOAT, COMPLEX, TUPLE = 5, 6, 7, 8, 9, 10  # MP_PERSISTENT_OBJ_*
NO_DATA = (0, 1, 2, 3, 4)  # fun table, None, False, True, Ellipsis
BYTECODE = 0
ARCH_FLAGS = 0x40


class Reader:
    def __init__(self, data):
        self.data, self.at = data, 0

    def byte(self):
        if self.at >= len(self.data):
            raise ValueError("truncated .mpy")
        self.at += 1
        return self.data[self.at - 1]

    def uint(self):
        n = 0
        while True:
            b = self.byte()
            n = (n << 7) | (b & 0x7F)
            if not b & 0x80:
                return n

    def skip(self, n):
        if self.at + n > len(self.data):
            raise ValueError("truncated .mpy")
        self.at += n


def copied(data):
    """[("bytecode" | "str" | "bytes", bytes allocated)] for one .mpy: each
    heap allocation a file load makes and a ROMFS load does not."""
    r = Reader(data)
    if r.byte() != ord("M") or r.byte() != 6:
        raise ValueError("not a version 6 .mpy")
    flags = r.byte()
    r.byte()
    if flags & ARCH_FLAGS:
        r.uint()
    n_qstr, n_obj = r.uint(), r.uint()
    for _ in range(n_qstr):
        n = r.uint()
        if not n & 1:  # odd: a static name, no data; else length << 1, data, NUL
            r.skip((n >> 1) + 1)
    out = []

    def obj():
        kind = r.byte()
        if kind in NO_DATA:
            return
        n = r.uint()
        if kind == TUPLE:
            for _ in range(n):
                obj()
            return
        r.skip(n)
        if kind in (STR, BYTES):
            r.byte()  # NUL
            if n:  # vstr_init_len: n + 1 bytes, kept as the object's data
                out.append(("str" if kind == STR else "bytes", n + 1))

    for _ in range(n_obj):
        obj()

    def raw_code():
        kind_len = r.uint()
        if kind_len & 3 != BYTECODE:
            raise ValueError("native code in .mpy")
        n = kind_len >> 3
        r.skip(n)
        out.append(("bytecode", n))
        if kind_len & 4:
            for _ in range(r.uint()):
                raw_code()

    raw_code()
    if r.at != len(data):
        raise ValueError("%d bytes after the .mpy's code" % (len(data) - r.at))
    return out


def blocks(sizes, block):
    """Bytes the GC hands out for these allocations, in blocks of `block`."""
    return sum(-(-n // block) * block for n in sizes)


def rom_saving(paths):
    """{"bytes32", "bytes64", "allocations"}: what loading these .mpy files
    from a filesystem allocates that ROMFS does not, on a 32-bit chip (16 B
    blocks) and in the 64-bit VM (32 B blocks)."""
    sizes = []
    for p in paths:
        with open(p, "rb") as f:
            sizes += [n for _, n in copied(f.read())]
    return {"bytes32": blocks(sizes, 16), "bytes64": blocks(sizes, 32), "allocations": len(sizes)}
