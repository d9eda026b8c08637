"""A person's call lock under the shared memory root: one call at a time across processes
(real processes, SIGKILL included), refused with one line when the root is not there."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from entropi.core.errors import MemoryFileError
from entropi.memory.person import PersonBusy, lock_person

HOLD = ("import sys, time; from pathlib import Path; from entropi.memory.person import lock_person;"
        "lock_person(Path(sys.argv[1]) / 'ada'); print('held', flush=True); time.sleep(60)")


def test_one_call_per_person_across_processes_and_a_killed_holder_frees_it(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(PersonBusy):
            lock_person(tmp_path / "ada", tmp_path)  # another replica has her call
        bob = lock_person(tmp_path / "bob", tmp_path)  # other people are not held up
        bob.release()
        holder.send_signal(signal.SIGKILL)  # a replica killed mid-call
        holder.wait(timeout=10)
    finally:
        holder.kill()
        holder.wait()
    ada = lock_person(tmp_path / "ada", tmp_path)  # the kernel dropped the dead one's lock
    with pytest.raises(PersonBusy):
        lock_person(tmp_path / "ada", tmp_path)  # two slots of one replica: excluded too
    ada.release()
    lock_person(tmp_path / "ada", tmp_path).release()
    assert (tmp_path / "ada").stat().st_mode & 0o777 == 0o700


def test_unreachable_root_is_one_line_and_writes_nothing(tmp_path):
    root = tmp_path / "share"  # not mounted
    with pytest.raises(MemoryFileError, match=r"memory.users_dir: .*share is not reachable"):
        lock_person(root / "ada", root)
    assert not root.exists()
    root.mkdir()
    (root / "ada").write_text("not a folder")  # (root ignores modes: a file stands in)
    with pytest.raises(MemoryFileError, match=r"cannot use .*ada"):
        lock_person(root / "ada", root)
    (root / "ada").unlink()
    lock_person(root / "ada", root).release()  # the failed attempt left no claim behind
    lock_person(tmp_path / "local" / "owner").release()  # no share: made as needed
