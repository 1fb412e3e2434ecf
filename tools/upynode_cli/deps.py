"""Fetch the firmware's third-party modules into build/deps/.

umqtt.simple and urequests are published as bare sdists that `pip download`
refuses ("does not appear to be a Python project"), so this asks the simple
API (PEP 503) of the index pip is configured with, checks the pinned sha256
and extracts only the modules the device needs. Nothing fetched lands in git.
"""
import hashlib
import io
import os
import re
import subprocess
import sys
import tarfile
import urllib.parse
import urllib.request

from .project import DEPS

OUT = str(DEPS)

# project -> (version, sha256 of the sdist, {member in sdist: path on device under lib/})
PINS = {
    "micropython-umqtt.simple": (
        "1.3.4", "b6a2520239e3992c63a7de9370ee9b3d9d27819a90359c521f1c0f7ccab8d12f",
        {"umqtt/simple.py": "umqtt/simple.py"}),
    "micropython-urequests": (
        "0.9.1", "15ed0132bcff1a84e87049d9d7780ce26df0810fa674aa89d187e17493d6e3c5",
        {"urequests/__init__.py": "urequests.py"}),
}


class FetchError(Exception):
    pass


def index_urls():
    """The index pip uses, then its extra indexes: from the environment, pip's
    config files, or pip's own built-in default."""
    urls = []
    env = os.environ.get("PIP_INDEX_URL")
    if env:
        urls.append(env)
    try:
        out = subprocess.run([sys.executable, "-m", "pip", "config", "list"],
                             capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    conf = {}
    for line in out.splitlines():
        key, _, val = line.partition("=")
        conf[key.split(".")[-1]] = val.strip().strip("'\"")
    if not urls and conf.get("index-url"):
        urls.append(conf["index-url"])
    if not urls:
        from pip._internal.models.index import PyPI  # pip's built-in default
        urls.append(PyPI.simple_url)
    urls += (os.environ.get("PIP_EXTRA_INDEX_URL") or conf.get("extra-index-url", "")).split()
    return urls


def normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def find_sdist(project, version):
    wanted = normalize("%s-%s" % (project, version)) + ".tar.gz"
    tried = []
    for base in index_urls():
        page_url = base.rstrip("/") + "/" + normalize(project) + "/"
        try:
            with urllib.request.urlopen(page_url, timeout=60) as r:
                page = r.read().decode("utf-8", "replace")
        except (OSError, ValueError) as e:
            tried.append("%s (%s)" % (page_url, e))
            continue
        for href in re.findall(r'href="([^"]+)"', page):
            url = urllib.parse.urljoin(page_url, href.replace("&amp;", "&"))
            name = urllib.parse.unquote(url.split("#")[0].rsplit("/", 1)[-1])
            if name.endswith(".tar.gz") and normalize(name[:-7]) + ".tar.gz" == wanted:
                return url.split("#")[0]
        tried.append("%s (no %s %s sdist listed)" % (page_url, project, version))
    raise FetchError("%s %s not found: tried %s" % (project, version, "; ".join(tried)))


def fetch(project, version, sha256, members, out=OUT, log=print):
    cache = os.path.join(out, "cache", "%s-%s.tar.gz" % (project, version))
    data = None
    if os.path.exists(cache):
        with open(cache, "rb") as f:
            data = f.read()
        if hashlib.sha256(data).hexdigest() != sha256:
            data = None  # a stale or damaged download: fetch it again
    if data is None:
        url = find_sdist(project, version)
        log("fetch: %s %s" % (project, version))
        with urllib.request.urlopen(url, timeout=120) as r:
            data = r.read()
        got = hashlib.sha256(data).hexdigest()
        if got != sha256:
            raise FetchError("%s %s: sha256 is %s, pinned %s: refusing it" % (project, version, got, sha256))
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        with open(cache + ".tmp", "wb") as f:
            f.write(data)
        os.replace(cache + ".tmp", cache)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        by_tail = {m.name.split("/", 1)[-1]: m for m in tar.getmembers() if m.isfile()}
        for member, dest in members.items():
            if member not in by_tail:
                raise FetchError("%s %s has no %s" % (project, version, member))
            body = tar.extractfile(by_tail[member]).read()
            path = os.path.join(out, "lib", dest)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(body)


def fetch_all(log=print):
    for project, (version, sha256, members) in PINS.items():
        fetch(project, version, sha256, members, log=log)
