"""upynode_vboard.mpyfile: what a .mpy loaded from a file copies into the
heap and a ROMFS load leaves in flash (the bench's 32-bit ROMFS figures
rest on it)."""
import pathlib
import subprocess

import pytest

from upynode_cli.project import mpy_cross
from upynode_vboard import mpyfile

LONG = "x" * 100  # too long to be interned: a str constant of its own


def compiled(tmp_path, src):
    (tmp_path / "m.py").write_text(src)
    subprocess.run([mpy_cross(), "-o", str(tmp_path / "m.mpy"), str(tmp_path / "m.py")], check=True)
    return (tmp_path / "m.mpy").read_bytes()


def test_one_bytecode_copy_per_function_and_one_per_long_string(tmp_path):
    data = compiled(tmp_path, "def f(a):\n    return a + 1\n\n\nclass C:\n    def g(self):\n"
                              "        return %r\n" % LONG)
    kinds = [k for k, _ in mpyfile.copied(data)]
    # the module, f, the class body and g
    assert kinds.count("bytecode") == 4
    assert [n for k, n in mpyfile.copied(data) if k == "str"] == [len(LONG) + 1]
    # the bytecode is part of the file and no bigger than it
    assert sum(n for k, n in mpyfile.copied(data) if k == "bytecode") < len(data)


def test_blocks_round_each_copy_up_to_the_gcs_block():
    assert mpyfile.blocks([1, 16, 17], 16) == 16 + 16 + 32
    assert mpyfile.blocks([1, 16, 17], 32) == 32 * 3


def test_every_module_of_the_build_parses_to_its_last_byte(board_build):
    paths = sorted(pathlib.Path(board_build).glob("lib/**/*.mpy"))
    assert len(paths) > 20
    s = mpyfile.rom_saving(paths)  # copied() raises on a byte left over or missing
    assert s["allocations"] > len(paths)
    assert s["bytes32"] < s["bytes64"] < 2 * s["bytes32"]


def test_a_file_that_is_not_a_v6_mpy_is_refused(tmp_path):
    data = compiled(tmp_path, "x = 1\n")
    with pytest.raises(ValueError):
        mpyfile.copied(b"M\x05" + data[2:])
    with pytest.raises(ValueError):
        mpyfile.copied(data[:-1])
    with pytest.raises(ValueError):
        mpyfile.copied(data + b"\x00")
