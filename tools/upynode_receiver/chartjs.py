"""Fetch the pinned Chart.js from the npm registry into build/ (never into git).

    python -m upynode_receiver.chartjs            # idempotent: does nothing if already there

`npm pack` downloads the release tarball; its sha512 must match the pinned npm
integrity string, and the extracted bundle must match its pinned sha256, so a
changed registry file or a damaged build/ copy is never served.
"""
import base64
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from upynode_cli.project import BUILD

VENDOR_DIR = BUILD / "receiver-vendor"
FETCH_COMMAND = "python -m upynode_receiver.chartjs"     # what messages tell a user to run

VERSION = "4.5.1"
# `npm view chart.js@4.5.1 dist.integrity`
TARBALL_INTEGRITY = ("sha512-GIjfiT9dbmHRiYi6Nl2yFCq7kkwdkp1W/lp2J99rX0yo9tgJGn3lKQATztIjb5t"
                     "VtevcBtIdICNWqlq5+E8/Pw==")
# The self-contained browser build (UMD: defines window.Chart, no bundler needed).
BUNDLE_MEMBER = "package/dist/chart.umd.min.js"
BUNDLE_SHA256 = "48444a82d4edcb5bec0f1965faacdde18d9c17db3063d042abada2f705c9f54a"
BUNDLE_NAME = "chart.umd.min.js"
LICENSE_MEMBER = "package/LICENSE.md"


def bundle_path(vendor_dir=VENDOR_DIR):
    return Path(vendor_dir) / BUNDLE_NAME


def is_installed(vendor_dir=VENDOR_DIR):
    path = bundle_path(vendor_dir)
    return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == BUNDLE_SHA256


def ensure(vendor_dir=VENDOR_DIR):
    """Make sure the verified bundle is in vendor_dir; return its path."""
    vendor_dir = Path(vendor_dir)
    if is_installed(vendor_dir):
        return bundle_path(vendor_dir)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["npm", "pack", f"chart.js@{VERSION}", "--pack-destination", tmp,
             "--ignore-scripts", "--silent"],
            check=True, cwd=tmp, stdout=subprocess.DEVNULL,
        )
        tarball = Path(tmp) / f"chart.js-{VERSION}.tgz"
        algo, expected = TARBALL_INTEGRITY.split("-", 1)
        actual = base64.b64encode(hashlib.new(algo, tarball.read_bytes()).digest()).decode()
        if actual != expected:
            raise RuntimeError(f"{tarball.name}: integrity {algo}-{actual} != pinned {TARBALL_INTEGRITY}")
        with tarfile.open(tarball) as tar:
            # Read named members only: nothing in the archive chooses where files land.
            bundle = tar.extractfile(BUNDLE_MEMBER).read()
            license_text = tar.extractfile(LICENSE_MEMBER).read()
    if hashlib.sha256(bundle).hexdigest() != BUNDLE_SHA256:
        raise RuntimeError(f"{BUNDLE_MEMBER}: sha256 differs from the pinned one")
    vendor_dir.mkdir(parents=True, exist_ok=True)
    (vendor_dir / "chart.js-LICENSE.md").write_bytes(license_text)
    # Write then rename, so a reader never sees half a file.
    partial = bundle_path(vendor_dir).with_suffix(".partial")
    partial.write_bytes(bundle)
    partial.replace(bundle_path(vendor_dir))
    return bundle_path(vendor_dir)


if __name__ == "__main__":
    try:
        print(f"Chart.js {VERSION}: {ensure()}")
    except (OSError, subprocess.CalledProcessError, RuntimeError) as exc:
        sys.exit(f"could not fetch Chart.js {VERSION}: {exc}")
