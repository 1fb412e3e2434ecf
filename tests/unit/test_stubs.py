"""Keep the virtual board honest: every name a fake exposes exists in
micropython-esp8266-stubs (the real ESP8266 API) with a compatible
signature and the same constant values, and the firmware uses no module
name the chip lacks (e.g. Pin.high()/low() from old tutorials)."""
import ast
import importlib
import importlib.metadata
import inspect
import os
import types

import pytest

from upynode_cli.project import LIB, REPO
FAKES = ("machine", "network", "dht", "esp", "webrepl", "ntptime", "onewire", "ds18x20", "micropython")


def stub_path(module):
    # The port's own modules, then MicroPython's stdlib (sys, os, json).
    wanted = (module + ".pyi", "stdlib/%s/__init__.pyi" % module, "stdlib/%s.pyi" % module)
    for dist in ("micropython-esp8266-stubs", "micropython-stdlib-stubs"):
        files = {str(f): f for f in importlib.metadata.distribution(dist).files}
        for w in wanted:
            if w in files:
                return str(files[w].locate())
    raise FileNotFoundError(module + " is not in micropython-esp8266-stubs")


class Stub:
    """What a .pyi declares: functions (every overload), classes, values."""

    def __init__(self, body):
        self.funcs, self.classes, self.values, self.names = {}, {}, {}, set()
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.funcs.setdefault(node.name, []).append(node.args)
                self.names.add(node.name)
            elif isinstance(node, ast.ClassDef):
                self.classes[node.name] = (Stub(node.body), [ast.unparse(b) for b in node.bases])
                self.names.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if isinstance(t, ast.Name):
                        self.names.add(t.id)
                        if isinstance(node.value, ast.Constant):
                            self.values[t.id] = node.value.value


def load_stub(module):
    with open(stub_path(module)) as f:
        return Stub(ast.parse(f.read()).body)


def class_members(stub, name):
    """A stub class's members, its stub bases' included."""
    body, bases = stub.classes[name]
    funcs, names, values = dict(body.funcs), set(body.names), dict(body.values)
    for b in bases:
        if b in stub.classes:
            f, n, v = class_members(stub, b)
            for k in f:
                funcs.setdefault(k, f[k])
            names |= n
            for k in v:
                values.setdefault(k, v[k])
    return funcs, names, values


def stub_params(args, is_method):
    pos = [a.arg for a in args.posonlyargs + args.args]
    if is_method and pos and pos[0] in ("self", "cls"):
        pos = pos[1:]
    n_defaults = len(args.defaults)
    required_pos = pos[:len(pos) - n_defaults] if n_defaults else pos
    kwonly = [a.arg for a in args.kwonlyargs]
    required_kw = [a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is None]
    return pos, required_pos, kwonly, required_kw, bool(args.vararg), bool(args.kwarg)


def compatible(fake_fn, overloads, is_method):
    """The fake accepts every call the stub requires of one overload, and
    takes no parameter that overload lacks."""
    sig = inspect.signature(fake_fn)
    params = list(sig.parameters.values())
    if is_method and params and params[0].name == "self":
        params = params[1:]
    P = inspect.Parameter
    f_pos = [p.name for p in params if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)]
    f_req = [p.name for p in params if p.default is P.empty and p.kind not in (P.VAR_POSITIONAL, P.VAR_KEYWORD)]
    f_kw = [p.name for p in params if p.kind in (P.KEYWORD_ONLY, P.POSITIONAL_OR_KEYWORD)]
    f_var = any(p.kind == P.VAR_POSITIONAL for p in params)
    f_varkw = any(p.kind == P.VAR_KEYWORD for p in params)
    for args in overloads:
        pos, req_pos, kwonly, req_kw, s_var, s_varkw = stub_params(args, is_method)
        if s_var or s_varkw:  # the stub leaves it open ("*args, **kwargs")
            return True
        ok = (len(req_pos) <= len(f_pos) or f_var)
        ok = ok and all(f_pos[i] == pos[i] for i in range(min(len(f_pos), len(pos))))
        ok = ok and all(k in f_kw or f_varkw for k in req_kw)
        ok = ok and all(n in pos + kwonly for n in f_pos + [n for n in f_kw if n not in f_pos])
        ok = ok and all(n in req_pos + req_kw for n in f_req)
        if ok:
            return True
    return False


def public(obj):
    for name, value in vars(obj).items():
        if not name.startswith("_") and not isinstance(value, types.ModuleType):
            if isinstance(obj, types.ModuleType) and getattr(value, "__module__", obj.__name__) != obj.__name__:
                continue  # imported into the fake, not defined by it
            yield name, value
    # Names a fake module loads at first use (machine.__getattr__: PWM, Timer, ...)
    for name in getattr(obj, "_LAZY", ()):
        yield name, getattr(obj, name)


def fake_module(name):
    # The fakes are on pytest's pythonpath (tests/pytest.ini)
    return importlib.import_module(name)


@pytest.mark.parametrize("module", FAKES)
def test_every_fake_name_is_in_the_esp8266_stubs(module):
    stub, fake = load_stub(module), fake_module(module)
    problems = []
    for name, value in public(fake):
        if name not in stub.names:
            problems.append("%s.%s is not in the ESP8266 API" % (module, name))
        elif inspect.isclass(value):
            if value.__name__ != name and getattr(fake, value.__name__, None) is value:
                continue  # an alias (machine.I2C is SoftI2C on the ESP8266): checked under its own name
            if name not in stub.classes:
                problems.append("%s.%s is a class here, not in the stubs" % (module, name))
                continue
            funcs, names, values = class_members(stub, name)
            members = {}
            for klass in reversed(value.__mro__[:-1]):
                if klass.__module__ == "builtins":
                    continue  # Exception's own members (args, with_traceback): CPython's, not the fake's
                members.update((k, v) for k, v in vars(klass).items() if not k.startswith("_") or k in ("__init__", "__call__"))
            for mname, member in members.items():
                where = "%s.%s.%s" % (module, name, mname)
                if mname not in names and mname not in funcs:
                    if mname != "__init__":
                        problems.append("%s is not in the ESP8266 API" % where)
                elif callable(member) and not inspect.isclass(member):
                    if mname in funcs and not compatible(member, funcs[mname], True):
                        problems.append("%s%s does not match the stub" % (where, inspect.signature(member)))
                elif mname in values and member != values[mname]:
                    problems.append("%s = %r, the chip has %r" % (where, member, values[mname]))
        elif callable(value):
            if name in stub.funcs and not compatible(value, stub.funcs[name], False):
                problems.append("%s.%s%s does not match the stub" % (module, name, inspect.signature(value)))
        elif name in stub.values and value != stub.values[name]:
            problems.append("%s.%s = %r, the chip has %r" % (module, name, value, stub.values[name]))
    assert not problems, "\n".join(problems)


def test_the_checker_catches_a_name_the_chip_lacks():
    # Pin.high() is what old tutorials call; current firmware has no such method.
    stub = load_stub("machine")
    funcs, names, _ = class_members(stub, "Pin")
    assert "high" not in names and "high" not in funcs
    assert "on" in funcs and "value" in funcs

    def value(self, x=None, extra=None):
        pass
    assert not compatible(value, funcs["value"], True)


CHECKED_MODULES = FAKES + ("time", "gc", "json", "os", "sys", "binascii")


def firmware_files():
    out = [os.path.join(REPO, "boot.py"), os.path.join(REPO, "main.py"), os.path.join(REPO, "update.py")]
    lib = os.path.join(LIB, "upynode")
    out += [os.path.join(lib, f) for f in sorted(os.listdir(lib)) if f.endswith(".py")]
    return out


@pytest.mark.parametrize("path", firmware_files(), ids=os.path.basename)
def test_the_firmware_uses_only_names_the_chip_has(path):
    with open(path) as f:
        tree = ast.parse(f.read())
    stubs = {}

    def check(module, name, line):
        if module not in stubs:
            stubs[module] = load_stub(module)
        if name not in stubs[module].names:
            problems.append("line %d: %s.%s is not in the ESP8266 API" % (line, module, name))

    problems, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name in CHECKED_MODULES:
                    aliases[a.asname or a.name] = a.name
        elif isinstance(node, ast.ImportFrom) and node.module in CHECKED_MODULES:
            for a in node.names:
                check(node.module, a.name, node.lineno)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            check(aliases[node.value.id], node.attr, node.lineno)
    assert not problems, "\n".join(problems)


def test_the_boards_os_adds_only_what_the_chips_os_has():
    # fakehw/board_os/os.py extends the VM's own os (MicroPython-only:
    # not importable here), so its functions are checked from the source:
    # each is one the chip's os has (the path functions, taken inside the
    # board's folder; statvfs; dupterm, which the unix port lacks)
    path = os.path.join(REPO, "tools", "upynode_vboard", "fakehw", "board_os", "os.py")
    with open(path) as f:
        tree = ast.parse(f.read())
    defined = [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")]
    assert {"dupterm", "statvfs", "listdir", "ilistdir", "stat", "remove", "rename", "mkdir", "rmdir",
            "chdir", "getcwd"} == set(defined)
    stub = load_stub("os")
    assert not [n for n in defined if n not in stub.names]
