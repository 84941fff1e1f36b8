"""Output safety: checks before work, atomic writes, full disks, the campaign lock."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from conftest import mount_tmpfs, unmount

from hpcneuro.errors import EnvironmentProblem, UserError
from hpcneuro.lock import CampaignLock, lock_path
from hpcneuro.outputs import DiskFull, atomic_path, check_output, require_space, write_text


def test_output_equal_to_input_refused_including_links(tmp_path):
    src = tmp_path / "t.csv"
    src.write_text("a,b\n1,2\n")
    with pytest.raises(UserError, match="is the input"):
        check_output(src, inputs=[src], is_own_kind=lambda p: True)
    link = tmp_path / "link.csv"
    link.symlink_to(src)
    with pytest.raises(UserError, match="is the input"):
        check_output(link, inputs=[src], is_own_kind=lambda p: True, overwrite=True)
    hard = tmp_path / "hard.csv"
    os.link(src, hard)
    with pytest.raises(UserError, match="is the input"):
        check_output(hard, inputs=[src], is_own_kind=lambda p: True, overwrite=True)


def test_foreign_existing_file_needs_overwrite(tmp_path):
    other = tmp_path / "notes.h5"
    other.write_text("precious")
    with pytest.raises(UserError, match="--overwrite"):
        check_output(other, is_own_kind=lambda p: False, kind="OINFO")
    assert check_output(other, is_own_kind=lambda p: False, overwrite=True) == other
    assert check_output(other, is_own_kind=lambda p: True) == other


def test_bad_output_paths_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="is a directory"):
        check_output(tmp_path)
    with pytest.raises(UserError, match="does not exist; create it"):
        check_output(tmp_path / "missing" / "o.h5")


def test_atomic_path_keeps_previous_file_on_error(tmp_path):
    out = tmp_path / "o.txt"
    out.write_text("good earlier result")
    with pytest.raises(RuntimeError):
        with atomic_path(out) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert out.read_text() == "good earlier result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.txt"]
    write_text(out, "new")
    assert out.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.txt"]


def test_read_only_folder_refused(tmp_path):
    mnt = mount_tmpfs(tmp_path / "ro", "ro,size=1m")  # read-only even for root
    try:
        with pytest.raises(UserError, match="not writable"):
            check_output(mnt / "o.h5")
    finally:
        unmount(mnt)

def test_full_disk_is_disk_full_and_leaves_nothing(small_disk):
    out = small_disk / "big.bin"
    (small_disk / "keep.txt").write_text("earlier")
    with pytest.raises(DiskFull, match="no space left") as info:
        with atomic_path(out) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"\0" * (2 << 20))
                f.flush()
                os.fsync(f.fileno())
    assert isinstance(info.value, EnvironmentProblem) and info.value.exit_status == 3
    assert sorted(p.name for p in small_disk.iterdir()) == ["keep.txt"]
    with pytest.raises(DiskFull, match="needs about 10.0 MB"):
        require_space(out, 10 << 20, "the store")


def test_lock_is_exclusive_names_holder_and_dies_with_it(tmp_path):
    results = tmp_path / "results.h5"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from hpcneuro.lock import CampaignLock
            CampaignLock({str(results)!r}).acquire()
            print("locked", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")))
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(UserError, match=rf"being written by another run \(host .* pid "
                                            rf"{holder.pid} since"):
            CampaignLock(results).acquire()
        holder.kill()  # SIGKILL: the kernel drops the lock, nothing stale remains
        holder.wait()
        with CampaignLock(results):
            assert lock_path(results).exists()
        assert not lock_path(results).exists()
    finally:
        holder.kill()
