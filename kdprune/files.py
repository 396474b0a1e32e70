"""Atomic file writes: a crash or kill never leaves a half-written output, only the old file or
none. Everything is written to a temporary name in the same folder and renamed into place. A full
disk stops the write with `DiskFull` (one line) and leaves no temporary file. Checkpoints can carry
a SHA-256 sidecar (`<file>.sha256`), checked before the file is unpickled."""

from __future__ import annotations

import errno
import glob
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class DiskFull(Exception):
    """No space (or quota) left while writing a result: nothing was replaced, no temporary file is left."""


def _out_of_space(err: BaseException) -> bool:
    # torch.save reports a full disk as a RuntimeError from its zip writer: look down the chain too.
    while err is not None:
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(err):
            return True
        err = err.__cause__ or err.__context__
    return False


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        yield Path(tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:
        if not _out_of_space(err):
            raise
        free = shutil.disk_usage(path.parent).free if path.parent.exists() else 0
        raise DiskFull(
            f"{path}: no space left on the device while writing it ({free:,} bytes free); "
            "nothing was replaced and every earlier result is intact: free space and rerun"
        ) from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def sha256_of(path: str | Path) -> str:
    """The file's SHA-256, hex (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def checksum_path(path: str | Path) -> Path:
    return Path(f"{path}.sha256")


def save_torch(path: str | Path, obj: Any, checksum: bool = False) -> None:
    """`checksum`: also write `<path>.sha256` (checkpoints that a kill may catch mid-write or that a
    disk may corrupt). The sidecar is written after the file: a kill between the two leaves a
    mismatch, which `load_torch(checksum=True)` refuses, so a stale pair is never trusted."""
    import torch

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:  # through a Python file, a full disk surfaces as ENOSPC, not as a bare zip-writer error
            torch.save(obj, f)
        digest = sha256_of(tmp) if checksum else None
    if digest is not None:
        write_text(checksum_path(path), digest + "\n")


def remove_checksummed(path: str | Path) -> None:
    """Delete a checkpoint and its sidecar (a finished run's checkpoint is not kept), and the
    temporary files of writes of either that a SIGKILL cut short (atomic_path cannot remove those)."""
    for p in (Path(path), checksum_path(path)):
        p.unlink(missing_ok=True)
        for partial in p.parent.glob(f".{glob.escape(p.name)}.*.tmp"):
            partial.unlink(missing_ok=True)


def load_torch(path: str | Path, map_location: Any = "cpu", checksum: bool = False) -> Any:
    """A file written by save_torch, loaded WITHOUT running code: tensors, numbers, strings and their
    dicts and lists only (`weights_only=True`). A file that holds anything else, or that is not a
    torch file at all (truncated, corrupt, another format), is refused with one ValueError line.
    `checksum`: the file must match its `.sha256` sidecar, checked before anything is unpickled."""
    import pickle

    import torch

    if checksum:
        sidecar = checksum_path(path)
        if not sidecar.exists():
            raise ValueError(f"{path}: refused to load: its checksum file {sidecar.name} is missing")
        expected, actual = sidecar.read_text().strip(), sha256_of(path)
        if expected != actual:
            raise ValueError(f"{path}: refused to load: SHA-256 {actual[:12]} differs from the recorded {expected[:12]} (truncated or corrupt)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path}: refused to load: not a plain tensor file, or it would run code ({first[:160]})") from None


def save_npz(path: str | Path, **arrays) -> None:
    import numpy as np

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:  # a file object keeps numpy from appending ".npz"
            np.savez(f, **arrays)


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
