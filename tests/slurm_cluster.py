"""A one-node Slurm cluster on localhost for tests: ``munged``, ``slurmctld`` and ``slurmd``
started in the foreground from a configuration written into a temporary folder (state, spool,
logs and the munge socket there too), and stopped by their own pids.

    with one_node_cluster(tmp_path) as cluster:
        job = cluster.sbatch("--array=1-2", "script.sh", env=env)
        states = cluster.wait(job, timeout=300)       # {array index: "COMPLETED", ...}

Nothing outside the folder is read or written except the Slurm and munge binaries (Debian's
``slurm-wlm`` and ``munge``); clients find the cluster through ``SLURM_CONF``. Every wait has a
deadline, and a failure message carries the daemons' logs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "scontrol", "scancel", "sinfo", "squeue")
NODE = "linqnode"
CPUS = 2
FINISHED = {
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "BOOT_FAIL",
    "DEADLINE",
    "PREEMPTED",
}
"""Job states after which an array task does nothing more."""


class ClusterError(AssertionError):
    """The cluster did not do what was asked in time; the message holds the daemons' logs."""


def unavailable() -> str | None:
    """Why a one-node cluster cannot be started here (None when it can)."""
    missing = [b for b in (*DAEMONS, *CLIENTS) if shutil.which(b) is None]
    if missing:
        return f"no {', '.join(missing)}: apt-get install slurm-wlm munge"
    if os.geteuid() != 0:
        return "starting slurmd needs root (SlurmUser=root)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(root: Path) -> Path:
    """``slurm.conf`` for one node of ``CPUS`` CPUs on 127.0.0.1, everything under ``root``."""
    for sub in ("state", "spool", "log"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    run = root / "run"  # munged wants its socket's folder open to all
    run.mkdir(exist_ok=True)
    run.chmod(0o755)
    host = socket.gethostname().split(".")[0]
    conf = root / "slurm.conf"
    conf.write_text(
        f"""ClusterName=linqtest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={run / "munge.sock"}
StateSaveLocation={root / "state"}
SlurmdSpoolDir={root / "spool"}
SlurmctldPidFile={root / "run" / "slurmctld.pid"}
SlurmdPidFile={root / "run" / "slurmd.pid"}
SlurmctldLogFile={root / "log" / "slurmctld.log"}
SlurmdLogFile={root / "log" / "slurmd.log"}
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
KillWait=5
MinJobAge=3600
NodeName={NODE} NodeHostname={host} NodeAddr=127.0.0.1 CPUs={CPUS} State=UNKNOWN
PartitionName=debug Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
""",
        encoding="utf-8",
    )
    key = root / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    return conf


@dataclass
class Cluster:
    """A running one-node cluster: its folder, the clients' environment and the daemons."""

    root: Path
    conf: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """``os.environ`` with ``SLURM_CONF`` pointing at this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def logs(self) -> str:
        """The tail of every daemon's log, for failure messages."""
        parts = []
        for path in sorted((self.root / "log").glob("*.log")):
            text = path.read_text(errors="replace")
            parts.append(f"--- {path.name} (last 3000 characters)\n{text[-3000:]}")
        for name, proc in self.procs.items():
            state = "running" if proc.poll() is None else f"exited with {proc.returncode}"
            parts.append(f"--- {name} (pid {proc.pid}): {state}")
        return "\n".join(parts)

    def check_alive(self) -> None:
        dead = [n for n, p in self.procs.items() if p.poll() is not None]
        if dead:
            raise ClusterError(f"{', '.join(dead)} stopped\n{self.logs()}")

    def command(self, *args: str, timeout: float = 30) -> str:
        """Run a Slurm client; its stdout. A failure or a hang is a ClusterError with the logs."""
        try:
            proc = subprocess.run(
                args, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise ClusterError(f"{' '.join(args)} hung for {timeout} s\n{self.logs()}") from None
        if proc.returncode != 0:
            raise ClusterError(
                f"{' '.join(args)} exited with {proc.returncode}: {proc.stderr}\n{self.logs()}"
            )
        return proc.stdout

    def sbatch(self, *args: str, env: Mapping[str, str], cwd: Path) -> str:
        """Submit a batch job from ``cwd`` with ``env`` as its environment; its job id."""
        env = {k: v for k, v in env.items() if not k.startswith("SLURM_")}  # no outer job's
        try:
            proc = subprocess.run(
                ["sbatch", "--parsable", *args],
                env={**env, "SLURM_CONF": str(self.conf)},
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ClusterError(f"sbatch hung for 30 s\n{self.logs()}") from None
        if proc.returncode != 0:
            raise ClusterError(f"sbatch failed: {proc.stderr}\n{self.logs()}")
        return proc.stdout.strip().split(";")[0]

    def states(self, job: str) -> dict[str, str]:
        """Each array index of ``job`` with its state (``PENDING``, ``RUNNING``, ``COMPLETED``
        ...); pending indices not yet split off show as one entry such as ``2-3``."""
        found = {}
        for line in self.command("scontrol", "-o", "show", "job", job).splitlines():
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            found[fields.get("ArrayTaskId", "")] = fields["JobState"]
        return found

    def wait(
        self,
        job: str,
        timeout: float,
        until: frozenset[str] = frozenset(FINISHED),
        index: str | None = None,
    ) -> dict[str, str]:
        """Poll until every array index of ``job`` (or only ``index``) is in a state of
        ``until``; the states. Past ``timeout`` seconds, or if a daemon dies, a ClusterError."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            states = self.states(job)
            watched = {i: s for i, s in states.items() if index is None or i == index}
            if watched and all(s in until for s in watched.values()):
                return states
            if time.monotonic() > deadline:
                raise ClusterError(f"job {job} after {timeout} s: {states}\n{self.logs()}")
            time.sleep(0.5)

    def start(self, timeout: float = 60) -> None:
        """Start munged, slurmctld and slurmd and wait until the node takes jobs."""
        log = self.root / "log"
        run = self.root / "run"
        daemons = {
            "munged": [
                "munged",
                "--foreground",
                "--force",
                f"--socket={run / 'munge.sock'}",
                f"--key-file={self.root / 'munge.key'}",
                f"--pid-file={run / 'munged.pid'}",
                f"--seed-file={self.root / 'munged.seed'}",
                f"--log-file={log / 'munged.log'}",
            ],
            "slurmctld": ["slurmctld", "-D", "-c", "-i", "-f", str(self.conf)],
            "slurmd": ["slurmd", "-D", "-N", NODE, "-f", str(self.conf)],
        }
        for name, cmd in daemons.items():
            with open(log / f"{name}.stderr.log", "w", encoding="utf-8") as err:
                self.procs[name] = subprocess.Popen(
                    cmd,
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=err,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            if name == "munged":
                self._wait_for(lambda: (run / "munge.sock").exists(), timeout, "munge's socket")
        self._wait_for(self._node_idle, timeout, f"node {NODE} idle")

    def _node_idle(self) -> bool:
        proc = subprocess.run(
            ["sinfo", "-h", "-n", NODE, "-o", "%T"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return proc.returncode == 0 and proc.stdout.strip() == "idle"

    def _wait_for(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            self.check_alive()
            if time.monotonic() > deadline:
                raise ClusterError(f"no {what} after {timeout} s\n{self.logs()}")
            time.sleep(0.2)

    def stop(self, timeout: float = 20) -> None:
        """Cancel the jobs left, SIGTERM each daemon (slurmd first) and SIGKILL what is still
        there after ``timeout``; then SIGKILL any process still in this cluster's environment
        (a job step that outlived its slurmd)."""
        if self.procs.get("slurmctld") and self.procs["slurmctld"].poll() is None:
            with contextlib.suppress(ClusterError):
                jobs = self.command("squeue", "-h", "-o", "%A", timeout=10).split()
                if jobs:
                    self.command("scancel", *set(jobs), timeout=10)
                    self._wait_for(
                        lambda: not self.command("squeue", "-h", timeout=10).strip(),
                        timeout,
                        "empty queue",
                    )
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
        for pid in self.leftover_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def leftover_pids(self) -> list[int]:
        """Processes other than this one whose environment names this cluster's SLURM_CONF
        (the daemons, job steps and jobs all inherit it)."""
        mark = f"SLURM_CONF={self.conf}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            with contextlib.suppress(OSError):
                if mark in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
        return found


@contextlib.contextmanager
def one_node_cluster(root: Path) -> Iterator[Cluster]:
    """A started cluster under ``root``, stopped on exit whatever happened."""
    cluster = Cluster(root, write_config(root))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
