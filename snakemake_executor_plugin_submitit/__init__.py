"""Snakemake executor plugin that submits jobs through submitit (SLURM, or local processes).

Selected with `executor: submitit` in a profile (or `--executor submitit`); settings are the
`--submitit-*` options below. Each Snakemake job (or group job) becomes one submitit job that
runs the job's `snakemake --mode remote` command; see docs/cluster.md.
"""

# No `from __future__ import annotations`: Snakemake builds the --submitit-* options from
# the dataclass field types, which must be real types, not strings.
import asyncio
import shutil
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import submitit
from snakemake_interface_common.exceptions import WorkflowError
from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo
from snakemake_interface_executor_plugins.executors.remote import RemoteExecutor
from snakemake_interface_executor_plugins.jobs import JobExecutorInterface
from snakemake_interface_executor_plugins.settings import CommonSettings, ExecutorSettingsBase
from submitit.core.core import PicklingExecutor
from submitit.core.utils import pickle_load

from . import status
from .command import ShellCommand
from .resources import SLURM_ONLY, local_parameters, slurm_parameters
from .signals import route_to_interrupt


@dataclass
class ExecutorSettings(ExecutorSettingsBase):
    cluster: str = field(
        default="slurm",
        metadata={
            "help": "Where submitit runs jobs: 'slurm' (sbatch) or 'local' (processes on this "
            "machine, same code path; for tests and machines without SLURM).",
            "choices": ["slurm", "local"],
        },
    )
    gpu_request: str = field(
        default="gpus",
        metadata={
            "help": "How the 'gpu' resource (and 'gpu_model') is requested: 'gpus' = --gpus=[model:]N, 'gres' = --gres=gpu:[model:]N (older sites).",
            "choices": ["gpus", "gres"],
        },
    )
    status_command: str = field(
        default="sacct",
        metadata={
            "help": "Job-state query, one call per polling round for all jobs: 'sacct' "
            "(needs accounting; falls back to squeue for the rest of the run if it fails) "
            "or 'squeue'.",
            "choices": ["sacct", "squeue"],
        },
    )
    max_num_timeout: int = field(
        default=3,
        metadata={
            "help": "How often submitit requeues a job that reached its time limit (the job "
            "resumes from its own checkpoint). A preemption signal counts too when it comes after "
            "min(0.8 x limit, limit - 10 min), which submitit takes for a timeout.",
        },
    )
    signal_delay_s: int = field(
        default=90,
        metadata={
            "help": "Seconds before the time limit at which SLURM signals the job, so submitit can requeue it before it is killed.",
        },
    )
    grace_s: int = field(
        default=20,
        metadata={
            "help": "Seconds a job's command gets after SIGTERM (preemption, time limit, scancel) to write its checkpoint "
            "and exit before it is killed. Keep it below the site's KillWait (scontrol show config; default 30 s), "
            "after which SLURM kills the whole job anyway.",
        },
    )


common_settings = CommonSettings(
    non_local_exec=True,
    implies_no_shared_fs=False,  # submitit's folder must be on a shared file system anyway
    job_deploy_sources=False,
    pass_default_storage_provider_args=True,
    pass_default_resources_args=True,
    pass_envvar_declarations_to_cmd=True,  # --envvars still work where sbatch --export=NONE
    auto_deploy_default_storage_provider=False,
    init_seconds_before_status_checks=0,  # a round costs one query, whatever the job count
    pass_group_args=True,
)


# submitit's log line before the traceback of a failed callable
_SUBMITIT_ERROR = "Submitted job triggered an exception"


class Executor(RemoteExecutor):
    def __post_init__(self) -> None:
        self.settings: ExecutorSettings = self.workflow.executor_settings
        self.local = self.settings.cluster == "local"
        if not self.local and shutil.which("sbatch") is None:
            raise WorkflowError(
                "--submitit-cluster slurm needs sbatch on PATH (use --submitit-cluster local to run the jobs as processes on this machine)."
            )
        # A fresh folder per run: job ids restart when a cluster's state is wiped, and a
        # reused folder would hand back an old job's result under the same id.
        self.run_uuid = uuid.uuid4().hex
        self.folder = Path(".snakemake", "submitit", self.run_uuid).absolute()
        self.status_command = self.settings.status_command
        self.status_rounds = 0
        self.status_queries: Counter[str] = Counter()
        self.n_submitted = 0
        # Submitted and not yet finished. RemoteExecutor empties active_jobs while a polling
        # round runs, so cancelling from that list alone could miss the jobs being polled.
        self.unfinished: dict[str, SubmittedJobInfo] = {}
        self.stop_signals_routed = False
        self.logger.info(f"submitit ({self.settings.cluster}): job files and logs in {self.folder}")

    # --- submission -------------------------------------------------------------------
    def run_job(self, job: JobExecutorInterface) -> None:
        self._route_stop_signals()
        name = self.get_jobname(job).removesuffix(".sh")
        executor = self._submitit_executor(job, name)
        try:
            submitted = executor.submit(ShellCommand(self.format_job_exec(job), grace_s=self.settings.grace_s))
        except Exception as error:  # sbatch rejected it: a profile error, retrying won't help
            raise WorkflowError(f"Submitting {name} failed: {error}") from error
        info = SubmittedJobInfo(job, external_jobid=submitted.job_id, aux={"submitit": submitted})
        with self.lock:
            self.unfinished[submitted.job_id] = info
        self.n_submitted += 1
        self.logger.info(f"Job {job.jobid} submitted as {self.settings.cluster} job {submitted.job_id} (log: {submitted.paths.stderr})")
        self.report_job_submission(info)

    def _route_stop_signals(self) -> None:
        # At the first submission, not in __post_init__: Snakemake's scheduler sets its own
        # SIGTERM handler (wait for every job) after it created the executor.
        if self.stop_signals_routed:
            return
        self.stop_signals_routed = True
        routed = route_to_interrupt(signal.SIGTERM, signal.SIGHUP)
        names = ", ".join(s.name for s in routed) or "none"
        self.logger.debug(f"submitit: signals that cancel every job like Ctrl-C: SIGINT, {names}")

    def _submitit_executor(self, job: JobExecutorInterface, name: str) -> PicklingExecutor:
        # A new executor per job: submitit's parameters accumulate across update_parameters
        # calls, so one shared executor would carry a GPU job's request into the next job.
        resources = job.resources
        timeouts = self.settings.max_num_timeout
        executor: PicklingExecutor
        if self.local:
            ignored = [r for r in SLURM_ONLY if resources.get(r)]
            if ignored:
                self.logger.debug(f"{name}: local cluster ignores {', '.join(ignored)}")
            executor = submitit.LocalExecutor(self.folder, max_num_timeout=timeouts)
            executor.update_parameters(**local_parameters(resources, name), signal_delay_s=self.settings.signal_delay_s)
            return executor
        executor = submitit.SlurmExecutor(self.folder, max_num_timeout=timeouts)
        executor.update_parameters(
            **slurm_parameters(
                resources,
                threads=job.threads,
                job_name=name,
                gpu_request=self.settings.gpu_request,
                comment=f"snakemake run {self.run_uuid}",
            ),
            signal_delay_s=self.settings.signal_delay_s,
        )
        return executor

    # --- status -----------------------------------------------------------------------
    async def check_active_jobs(self, active_jobs: list[SubmittedJobInfo]) -> AsyncGenerator[SubmittedJobInfo, None]:
        if not active_jobs:
            return
        async with self.status_rate_limiter:
            states = self._query_states(active_jobs)
        for info in active_jobs:
            state = states.get(info.external_jobid)  # None: not yet in the accounting database
            if state in (status.GONE, "FINISHED"):
                state = self._state_from_result(info)
            if not status.is_finished(state):
                yield info
                continue
            with self.lock:
                self.unfinished.pop(info.external_jobid, None)
            if state == status.SUCCESS:
                self.report_job_success(info)
            else:
                paths = info.aux["submitit"].paths
                self.report_job_error(
                    info,
                    msg=self._failure_message(info, state),
                    aux_logs=[str(paths.stderr), str(paths.stdout)],
                )

    def _query_states(self, active_jobs: list[SubmittedJobInfo]) -> dict[str, str]:
        self.status_rounds += 1
        if self.local:  # process states, no scheduler to ask
            return {i.external_jobid: _local_state(i.aux["submitit"]) for i in active_jobs}
        ids = [i.external_jobid for i in active_jobs]
        if self.status_command == "sacct":
            self.status_queries["sacct"] += 1
            try:
                return self._log_round(self._ask_controller_if_requeued(status.sacct_states(ids)), "sacct", len(ids))
            except status.StatusQueryError as error:
                self.logger.warning(f"{error}; polling with squeue from now on")
                self.status_command = "squeue"
        self.status_queries["squeue"] += 1
        try:
            return self._log_round(status.squeue_states(ids), "squeue", len(ids))
        except status.StatusQueryError as error:  # transient: try again next round
            self.logger.warning(str(error))
            return {}

    def _ask_controller_if_requeued(self, states: dict[str, str]) -> dict[str, str]:
        """sacct's PREEMPTED or NODE_FAIL may be a run that SLURM is requeueing: one squeue call for
        those jobs, whose answer wins where it still lists them. Reporting such a job failed would
        make Snakemake give up on it (or submit it again) while SLURM runs it once more."""
        doubtful = [job_id for job_id, state in states.items() if state in status.MAYBE_REQUEUED]
        if not doubtful:
            return states
        self.status_queries["squeue"] += 1
        try:
            live = status.squeue_states(doubtful)
        except status.StatusQueryError as error:  # the accounting's word, as before this check
            self.logger.warning(f"{error}; taking sacct's state for job(s) {' '.join(doubtful)}")
            return states
        return {**states, **{job_id: state for job_id, state in live.items() if state != status.GONE}}

    def _log_round(self, states: dict[str, str], command: str, n_jobs: int) -> dict[str, str]:
        self.logger.debug(f"submitit status round {self.status_rounds}: 1 {command} call for {n_jobs} jobs")
        return states

    @staticmethod
    def _state_from_result(info: SubmittedJobInfo) -> str:
        """COMPLETED or FAILED from the result file submitit writes when the callable ends."""
        result = info.aux["submitit"].paths.result_pickle
        if result.exists() and pickle_load(result)[0] == "success":
            return status.SUCCESS
        return "FAILED"

    def _failure_message(self, info: SubmittedJobInfo, state: str | None) -> str:
        paths = info.aux["submitit"].paths
        lines = [
            f"{self.settings.cluster} job {info.external_jobid} ended in state {state}.",
            f"submitit stderr: {paths.stderr}",
            f"submitit stdout: {paths.stdout}",
        ]
        if paths.stderr.exists():
            # The end of the job's own output: what precedes submitit's traceback of it.
            text = paths.stderr.read_text(errors="replace")
            own = text.split(_SUBMITIT_ERROR)[0].splitlines()
            if _SUBMITIT_ERROR in text:
                own.pop()  # the start of submitit's "submitit ERROR (time) - ..." line
            tail = [line for line in own if line.strip()][-25:]
            lines += ["Last lines of its stderr:", *(f"    {line}" for line in tail)]
        return "\n".join(lines) + "\n"

    # --- cancellation and shutdown ----------------------------------------------------
    def cancel_jobs(self, active_jobs: list[SubmittedJobInfo]) -> None:
        with self.lock:
            jobs = {i.external_jobid: i for i in [*active_jobs, *self.unfinished.values()]}
        if not jobs:
            return
        if self.local:
            for info in jobs.values():
                info.aux["submitit"].cancel(check=False)
        else:  # one scancel for all, as for polling
            subprocess.run(["scancel", *jobs], check=False)
        self.logger.info(f"submitit: cancelled {len(jobs)} job(s): {' '.join(jobs)}")

    async def sleep(self) -> None:
        # RemoteExecutor sleeps a whole polling interval, and shutdown() joins the polling
        # thread: the end of every run would wait up to seconds-between-status-checks.
        deadline = time.monotonic() + self.next_seconds_between_status_checks
        while self.wait and (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(left, 0.5))

    def shutdown(self) -> None:
        super().shutdown()
        queries = ", ".join(f"{n} {cmd}" for cmd, n in sorted(self.status_queries.items()))
        self.logger.info(f"submitit: {self.n_submitted} jobs submitted, {self.status_rounds} status rounds, status queries: {queries or 'none'}")


def _local_state(job: Any) -> str:
    """LocalJob process state in SLURM's words; FINISHED is resolved from the result file."""
    state = job.get_info()["jobState"]
    return {"RUNNING": "RUNNING", "INTERRUPTED": "CANCELLED"}.get(state, "FINISHED")
