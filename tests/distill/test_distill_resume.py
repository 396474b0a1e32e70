"""Nothing of a distillation is lost under faults (issue #17, kdprune.distill.resume). DC, DM and DM
with BiLP's causal-effect filter, each as the workflow runs it (`python -m kdprune run distilled` in
a subprocess, on a plan of tiny digits settings), against an uninterrupted run of the same job:

(a) SIGKILL of the process after a checkpoint was written: the rerun (in this process, from the
    same plan file) resumes there and ends with the same images, labels and loss history, bit for bit;
(b) SIGTERM mid-run: exit 75 with one line naming the set, the iteration and the checkpoint, the
    checkpoint written at once (no periodic one is due), and the rerun ends the same;
(c) a checkpoint with a flipped byte, a truncated one, one without its sidecar, another run's: one
    log line, never loaded, and the result is the uninterrupted one.

Faults injected: 3 SIGKILLs, 3 SIGTERMs, 3 flipped bytes, 3 truncations, 3 deleted sidecars and 1
foreign checkpoint (16). Also: `distill.checkpoint_every` leaves every set's settings hash as it
was, and a bad value is refused in one line."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from kdprune.distill.resume import CHECKPOINT_FILE, Checkpoint
from kdprune.files import checksum_path, load_torch
from kdprune.forkserver import ENV as FORKSERVER
from kdprune.jobs.runners import run_distilled
from kdprune.plan import Plan
from kdprune.plan.config import ROOT, ConfigError, check_names, check_schema, load, normalise
from kdprune.plan.kinds import settings_hash
from kdprune.stopping import PREEMPTED_EXIT, Preempted, stop_on_signals

pytestmark = pytest.mark.usefixtures("one_thread")

# Tiny settings: a 16-wide ConvNet, 16 real images per class; every iteration logged (the SIGTERM
# test waits for one). DC with an inner loop (its network's training between the image steps).
DC = {"iterations": 8, "batch_real": 16, "batch_train": 16, "net_width": 16, "outer_loop": 2, "inner_loop": 1, "log_every": 1}
DM = {"iterations": 20, "batch_real": 16, "net_width": 16, "log_every": 1}
KEYS = {  # job key -> (method, iterations)
    "digits/distilled/dc-ipc1/full/keep1": ("dc", DC["iterations"]),
    "digits/distilled/dm-ipc1/full/keep1": ("dm", DM["iterations"]),
    "digits/distilled/dm-ipc1-ite0.2/full/keep1": ("dm", DM["iterations"]),
}
TIMEOUT = 300  # seconds a child may take on a loaded machine


def plan_of(every: int | None = None) -> Plan:
    """One experiment: full-data DC and DM at IPC 1, DM also with the causal-effect filter, seed 0."""
    overrides = {"distill": {"dc": DC, "dm": DM, "ite": {"interval": 2}, **({"checkpoint_every": every} if every else {})}}
    cfg = load(ROOT / "config.yaml", overrides)
    distill = {"dc": {"ipc": [1]}, "dm": {"ipc": [1], "ite": [0, 0.2]}}
    exp = {"paper": "T", "student": ["ConvNet"], "selection": ["random"], "keep": [1.0], "seed": [0], "loss": {"ce": {}}, "distill": distill}
    cfg = {**cfg, "experiments": {"e": exp}, "claims": {}}
    check_schema(cfg)
    cfg = normalise(cfg)
    check_names(cfg)
    return Plan(cfg)


def set_dir(root: Path, key: str) -> Path:
    return root / "results/smoke" / key / "s0"


def outputs_under(plan: Plan, key: str, root: Path) -> dict:
    return {name: str(root / path) for name, path in plan.outputs("distilled", key).items()}


def result_of(root: Path, key: str) -> tuple[dict, list]:
    folder = set_dir(root, key)
    return load_torch(folder / "synthetic.pt"), json.loads((folder / "distilled.json").read_text())["history"]


def assert_same(made: tuple[dict, list], reference: tuple[dict, list]) -> None:
    (synthetic, history), (ref, ref_history) = made, reference
    assert torch.equal(synthetic["images"], ref["images"]) and torch.equal(synthetic["labels"], ref["labels"])
    assert history == ref_history  # every iteration's loss, bit for bit (JSON floats round-trip)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    """Each job run once without a fault, in this process (one thread, as the children)."""
    plan, root = plan_of(), tmp_path_factory.mktemp("uninterrupted")
    for key in KEYS:
        run_distilled(plan.spec("distilled", key), {}, outputs_under(plan, key, root), plan.cfg, lambda msg: None)
    return {key: result_of(root, key) for key in KEYS}


def workdir(tmp_path: Path, every: int) -> Path:
    """A folder holding the plan, as the workflow writes it (results/smoke/plan.json)."""
    (tmp_path / "results/smoke").mkdir(parents=True)
    (tmp_path / "results/smoke/plan.json").write_text(json.dumps(plan_of(every).cfg))
    return tmp_path


def start(root: Path, key: str, name: str) -> subprocess.Popen:
    """`python -m kdprune run distilled` of one job, its output in <name>.out/.err."""
    env = {k: v for k, v in os.environ.items() if k != FORKSERVER}  # no fork server: a process of its own to kill
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "kdprune", "--threads", "1", "run", "distilled", "--plan", "results/smoke/plan.json", "--key", key]
    with open(root / f"{name}.out", "w") as out, open(root / f"{name}.err", "w") as err:
        return subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=err)


def rerun(root: Path, key: str) -> list[str]:
    """The job rerun to its end in this process, from the plan file under `root`; its log lines."""
    plan, lines = Plan.read(root / "results/smoke/plan.json"), []
    run_distilled(plan.spec("distilled", key), {}, outputs_under(plan, key, root), plan.cfg, lines.append)
    return lines


def wait_until(ready, child: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not ready():
        assert child.poll() is None, f"the child ended (status {child.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no {what} after {TIMEOUT} s"
        time.sleep(0.005)


@pytest.mark.parametrize("key", KEYS)
def test_a_sigkill_after_a_checkpoint_loses_nothing(key, tmp_path, uninterrupted):
    root = workdir(tmp_path, every=3)
    checkpoint = set_dir(root, key) / CHECKPOINT_FILE
    child = start(root, key, "killed")
    wait_until(checksum_path(checkpoint).exists, child, "a checkpoint")
    child.send_signal(signal.SIGKILL)
    assert child.wait(TIMEOUT) == -signal.SIGKILL
    assert not (set_dir(root, key) / "synthetic.pt").exists()  # killed mid-run
    saved = load_torch(checkpoint, checksum=True)["iteration"]
    total = KEYS[key][1] + 1
    assert 0 < saved < total and saved % 3 == 0
    (said,) = [line for line in rerun(root, key) if CHECKPOINT_FILE in line]
    assert re.fullmatch(rf"\[distilled \w+ ipc 1 s0\] resuming from \S+/{CHECKPOINT_FILE} at iteration {saved}/{total}", said)
    assert_same(result_of(root, key), uninterrupted[key])
    assert not checkpoint.exists() and not checksum_path(checkpoint).exists()  # the job is done: its checkpoint goes


@pytest.mark.parametrize("key", KEYS)
def test_b_sigterm_saves_at_once_exits_75_and_the_rerun_ends_the_same(key, tmp_path, uninterrupted):
    root = workdir(tmp_path, every=1000)  # no periodic checkpoint: the one on disk is the signal's
    method, iterations = KEYS[key]
    checkpoint = set_dir(root, key) / CHECKPOINT_FILE
    child = start(root, key, "stopped")
    wait_until(lambda: f"{method} iter 00002/" in (root / "stopped.out").read_text(), child, "iteration 2")
    child.send_signal(signal.SIGTERM)
    assert child.wait(TIMEOUT) == PREEMPTED_EXIT
    lines = [line for line in (root / "stopped.err").read_text().splitlines() if "stopped by SIGTERM" in line]
    assert len(lines) == 1, (root / "stopped.err").read_text()
    said = re.fullmatch(
        rf"kdprune run: \[distilled {method} ipc 1 s0\] stopped by SIGTERM after iteration (\d+) of (\d+); its state is in (\S+): rerun to resume",
        lines[0],
    )
    assert said and int(said[2]) == iterations + 1 and Path(said[3]) == checkpoint.relative_to(root)
    assert load_torch(checkpoint, checksum=True)["iteration"] == int(said[1]) >= 3
    assert f"{checkpoint} at iteration {said[1]}/{iterations + 1}" in "".join(rerun(root, key))
    assert_same(result_of(root, key), uninterrupted[key])
    assert not checkpoint.exists()


@pytest.fixture(scope="module")
def stopped(tmp_path_factory) -> dict:
    """Per job, a checkpoint made in this process: a real SIGTERM to it at iteration 4 inside
    `stop_on_signals` (the CLI's wrapper) saves it and raises Preempted."""
    plan, root = plan_of(every=1000), tmp_path_factory.mktemp("stopped")
    made = {}
    for key, (method, _) in KEYS.items():

        def log(msg: str, method=method) -> None:
            if msg.startswith(f"{method} iter 00004/"):
                os.kill(os.getpid(), signal.SIGTERM)

        with stop_on_signals(), pytest.raises(Preempted, match=r"stopped by SIGTERM after iteration 5 of"):
            run_distilled(plan.spec("distilled", key), {}, outputs_under(plan, key, root), plan.cfg, log)
        made[key] = set_dir(root, key) / CHECKPOINT_FILE
        assert load_torch(made[key], checksum=True)["iteration"] == 5
    return made


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def drop_sidecar(path: Path) -> None:
    checksum_path(path).unlink()


FAULTS = {"flipped byte": flip_a_byte, "truncated": truncate, "no sidecar": drop_sidecar}


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("key", KEYS)
def test_c_a_damaged_checkpoint_is_ignored_in_one_line_and_the_run_starts_over(key, fault, tmp_path, stopped, uninterrupted):
    checkpoint = set_dir(workdir(tmp_path, every=1000), key) / CHECKPOINT_FILE
    checkpoint.parent.mkdir(parents=True)
    for path in (stopped[key], checksum_path(stopped[key])):
        shutil.copy(path, checkpoint.parent)
    FAULTS[fault](checkpoint)
    lines = rerun(tmp_path, key)
    said = [line for line in lines if CHECKPOINT_FILE in line]
    assert len(said) == 1 and "ignoring its checkpoint, starting over" in said[0] and str(checkpoint) in said[0], said
    assert not any("resuming" in line for line in lines)
    assert_same(result_of(tmp_path, key), uninterrupted[key])
    assert not checkpoint.exists()


def test_c_another_runs_checkpoint_is_ignored(tmp_path, stopped, uninterrupted):
    """DM's checkpoint where DM with the causal-effect filter keeps its own: the same shapes, another run."""
    key = "digits/distilled/dm-ipc1-ite0.2/full/keep1"
    folder = set_dir(workdir(tmp_path, every=1000), key)
    folder.mkdir(parents=True)
    plain = stopped["digits/distilled/dm-ipc1/full/keep1"]
    for path in (plain, checksum_path(plain)):
        shutil.copy(path, folder)
    said = [line for line in rerun(tmp_path, key) if CHECKPOINT_FILE in line]
    assert len(said) == 1 and "written by another run" in said[0]
    assert_same(result_of(tmp_path, key), uninterrupted[key])


def test_checkpoint_every_changes_no_settings_hash_and_a_bad_value_is_one_line():
    default, every = plan_of(), plan_of(every=7)
    assert default.cfg["distill"]["checkpoint_every"] == 100 and every.cfg["distill"]["checkpoint_every"] == 7
    for kind in ("distilled", "student"):
        assert default.jobs(kind).keys() == every.jobs(kind).keys()
        for key in default.jobs(kind):
            assert settings_hash(default.spec(kind, key)) == settings_hash(every.spec(kind, key))
            assert "checkpoint_every" not in json.dumps(every.spec(kind, key))
    for bad in (0, -1, 2.5, "10"):
        with pytest.raises(ConfigError) as refused:
            load(ROOT / "config.yaml", {"distill": {"checkpoint_every": bad}})
        assert str(refused.value).startswith(f"config: distill.checkpoint_every = {bad!r} is not allowed") and "\n" not in str(refused.value)
    with pytest.raises(ValueError, match="an integer >= 1"):
        Checkpoint(Path("c.pt"), 0)
