"""update.py's trial bookkeeping under CPython (issue 19): boot.py runs
update.boot() when romfs.new or romfs.trial is on the board. Writing the
partition itself runs in the VM (tests/vm/test_vm_update.py)."""
import importlib.util

import pytest

from upynode_cli import romfs
from upynode_cli.project import REPO


@pytest.fixture
def update(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = importlib.util.spec_from_file_location("update", REPO / "update.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_board_and_deploy_name_the_same_files_and_rules(update):
    assert (update.NEW, update.TRIAL, update.ROLLED_BACK) == (romfs.STAGED, romfs.TRIAL, romfs.ROLLED_BACK)
    assert (update.TRIAL_S, update.TRIAL_BOOTS) == (romfs.TRIAL_S, romfs.TRIAL_BOOTS)


def test_every_boot_on_trial_counts_and_keeps_the_time_deploy_gave(update, tmp_path):
    (tmp_path / "romfs.trial").write_text("0 42")
    lines = []
    for n in (1, 2, 3):
        assert update.boot(lines.append) is False
        assert (tmp_path / "romfs.trial").read_text() == "%d 42" % n
    assert lines[-1] == "update: the new image is on trial, boot 3 of 3 without a reading delivered"
    # the 4th boot without a reading: no previous image to go back to here
    assert update.boot(lines.append) is False
    assert not (tmp_path / "romfs.trial").exists()
    assert "no previous one to go back to" in lines[-1]
    # the verdict, for deploy --wait
    assert "no previous one" in (tmp_path / "romfs.rolledback").read_text()


@pytest.mark.parametrize("text", ["", "x", "0", "1 x"])
def test_a_torn_or_old_trial_file_still_counts(update, tmp_path, text):
    (tmp_path / "romfs.trial").write_text(text)
    update.boot(lambda m: None)
    want = {"0": "1 600", "": "1 600", "x": "1 600", "1 x": "1 600"}[text]
    assert (tmp_path / "romfs.trial").read_text() == want
