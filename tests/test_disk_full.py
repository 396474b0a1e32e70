"""A full disk while results are written (issue #17): the write stops with one line (`DiskFull`,
exit 2 from `kdprune run`), no temporary file is left and every earlier result is byte-identical.
Faults are real (a small tmpfs filled up) where this machine lets us mount one, and injected
(ENOSPC from the writer) everywhere."""

import builtins
import errno
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from kdprune.files import DiskFull, save_npz, save_torch, write_json, write_text

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def small_disk(tmp_path):
    """A real 2 MiB tmpfs (root only: mounting needs it; CI runs as root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the injected-fault tests below still run")
    mount = tmp_path / "work" / "results"  # where a job run from tmp_path/work writes (results/<preset>)
    mount.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk: Path, leave: int) -> None:
    """Fill the disk until about `leave` bytes are free."""
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    (disk / "filler").write_bytes(b"\0" * max(free - leave, 0))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "filler"}


WRITERS = {
    "torch": lambda path: save_torch(path, {"w": torch.zeros(400_000)}),
    "torch with checksum": lambda path: save_torch(path, {"w": torch.zeros(400_000)}, checksum=True),
    "npz": lambda path: save_npz(path, scores=np.zeros(400_000)),
    "json": lambda path: write_json(path, {"scores": list(range(200_000))}),
    "text": lambda path: write_text(path, "x" * 1_600_000),
}


@pytest.mark.parametrize("writer", WRITERS)
def test_a_write_that_fills_a_real_disk_stops_with_one_line_and_keeps_the_earlier_file(small_disk, writer):
    target = small_disk / "results" / "out.bin"
    write_text(target, "the earlier result\n")
    fill(small_disk, leave=64 * 1024)
    before = snapshot(small_disk)
    with pytest.raises(DiskFull) as err:
        WRITERS[writer](target)
    assert len(str(err.value).splitlines()) == 1 and str(target) in str(err.value) and "no space left" in str(err.value)
    assert snapshot(small_disk) == before  # the old file unchanged, no temporary file, no sidecar
    assert target.read_text() == "the earlier result\n"


def test_a_job_on_a_full_disk_exits_2_with_one_line_and_its_rerun_finishes(small_disk, tmp_path):
    """`kdprune run teacher` of the smoke plan writing into a full results folder: one stderr line,
    exit 2, the earlier results of another job untouched; with space again, the same command
    finishes the job."""
    from kdprune.plan import Plan

    work = small_disk.parent
    plan = Plan.from_config(REPO / "config.yaml")
    plan.plan_file = str(work / plan.plan_file)  # results/<preset>/plan.json, on the small disk
    plan.write()  # the job's own files go to results/<preset>/ under its working folder: the small disk too
    key = next(iter(plan.jobs("teacher")))
    earlier = small_disk / plan.preset / "an-earlier-job"
    write_json(earlier / "metrics.json", {"final_acc": 0.5})
    save_torch(earlier / "model.pt", {"w": torch.arange(10)}, checksum=True)
    fill(small_disk, leave=32 * 1024)
    before = snapshot(small_disk)
    args = [sys.executable, "-m", "kdprune", "run", "teacher", "--plan", plan.plan_file, "--key", key]
    env = dict(os.environ, KDPRUNE_FORKSERVER="")
    out = subprocess.run(args, cwd=work, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 2, out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kdprune run: ") and "no space left on the device" in lines[0], out.stderr[-2000:]
    after = snapshot(small_disk)
    assert {k: v for k, v in after.items() if k in before} == before  # every earlier file byte-identical
    assert not [k for k in after if k.endswith(".tmp")] and not [k for k in after if k.endswith("metrics.json") and k not in before]
    (small_disk / "filler").unlink()
    again = subprocess.run(args, cwd=work, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (work / plan.results / key / "metrics.json").exists()


class _FullDiskFile(io.FileIO):
    """A real file whose writes fail as a full disk's do."""

    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("writer", WRITERS)
def test_an_injected_enospc_stops_every_writer_with_one_line(tmp_path, monkeypatch, writer):
    """Without a tmpfs: every file opened for writing fails its first write with ENOSPC (torch's
    zip writer turns it into a RuntimeError, numpy and json pass the OSError on); each becomes
    DiskFull, the old file stays and no temporary file is left."""
    target = tmp_path / "out.bin"
    write_text(target, "the earlier result\n")
    real_open = io.open

    def full_disk_open(file, mode="r", *args, **kwargs):
        return _FullDiskFile(file, "w") if "w" in mode else real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(io, "open", full_disk_open)
    monkeypatch.setattr(builtins, "open", full_disk_open)
    with pytest.raises(DiskFull) as err:
        WRITERS[writer](target)
    monkeypatch.undo()
    assert len(str(err.value).splitlines()) == 1 and str(target) in str(err.value)
    assert target.read_text() == "the earlier result\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]
