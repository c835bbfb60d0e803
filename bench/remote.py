"""Remote collection speed: a 10-command triage on 50 SSH hosts, irtool beside paramiko and Ansible.

Run (from the repository root):

    .venv/bin/python bench/remote.py [--hosts 50] [--repeat 3] [--quick] [--no-ansible]
        [--baseline REV | --baseline-tree DIR] [--ansible]

What it does, all inside one temporary directory (nothing is written elsewhere):

1. Starts ``--hosts`` real OpenSSH sshd instances on 127.0.0.1 (tests.support.sshd.SshdFarm),
   each with its own host key. Their sessions get an empty HOME (see ``BenchFarm``) unless
   ``--user-rc``.
2. Writes a runbook with one collect step, ``triage``: ten read-only commands a responder
   runs first on a Linux web server (processes, sockets, /etc, accounts, disks, ...), and
   two inventories (all hosts; one host), every host key pinned by fingerprint.
3. irtool: per repeat, ``irtool incident new`` (setup, not timed), then the timed
   ``irtool incident run ID triage --parallel N`` as a whole CLI process (interpreter start,
   imports and journal included), checked: exit 0, every host ok with ten exit statuses 0,
   and ``irtool verify ID`` passes. The same for one host.
4. Ansible (``ansible-core``; installed into this venv when missing, said on stderr): the same
   ten commands as ten ad-hoc runs, one after another, ``ansible all -f N -m shell -a CMD``,
   with host key checking on against a known_hosts file of the farm, ControlMaster/
   ControlPersist, pipelining on (Ansible's own advice for speed) and the venv's python as
   the remote interpreter. Each repeat starts with no control master alive. Checked: exit 0
   and one ``CHANGED | rc=0`` line per host for every command. The same for one host.
5. Memory: 1 GiB of output in total (4 hosts, each one command writing 256 MiB of text that
   differs per host, so content addressing cannot fold it), collected by one
   ``irtool incident run`` whose peak RSS is measured (``/usr/bin/time -v``, else
   ``getrusage`` in a wrapper process with that single child). Checked: the evidence files
   add up to exactly 1 GiB and ``irtool verify`` passes.

Besides wall time, every timed run reports where the CPU went: ``tool cpu`` is the user+sys
time of the tool's own processes (irtool; ansible and its forks, not the ssh control masters,
which detach), ``hosts cpu`` that of the sshd instances and everything they ran (key
exchange, sessions, shells, the commands). On loopback both share this machine's cores, so
``floor`` = (tool cpu + hosts cpu) / cores is the shortest wall time the run could have had
here. Other processes on the machine (the load average is printed) only add to wall time.

The control (bench/remote_control.py), in every repeat right after irtool's runs of the same
hosts: bare paramiko doing the run's wire work and nothing else, from a process of its own:
the same connects (a first one per host for the facts probe irtool sends on first contact, a
second for the ten commands), logins (key auth, host key pinned), exec channels (each command
line as irtool sends it, stdout and stderr read to EOF, the exit status) and parallelism.
irtool's own CPU per remote command is irtool's tool cpu less the control's, per exec channel
(11 a host): on N hosts and on one host (both carry irtool's start-up: interpreter, imports,
journal), and once started: ((irtool N - irtool 1) - (control N - control 1)) / ((N - 1) x 11),
each from the runs of one repeat, then the median.

Targets (from the issue): irtool on N hosts takes at most 1.5x its own single-host time;
Ansible takes at least 3x irtool's time on N hosts; peak RSS while collecting 1 GiB stays
under 200 MB; irtool's own CPU once started is at most 1 ms per remote command. Each is
printed as PASS or FAIL with its numbers. The exit status is 0 when
every run succeeded and was verified, whatever the targets; 1 when a run failed.

``--quick``: 5 hosts, 64 MiB, one repeat: a smoke test (tests/test_bench_smoke.py runs it
with ``--no-ansible``).

Each irtool process runs as ``python -m irtool`` with its source tree first on PYTHONPATH and
the temporary directory as its cwd: the tree measured is the one this file is in, whatever the
directory the benchmark is started from (``-m`` puts the cwd before PYTHONPATH, and the venv's
editable install comes after both).

``--baseline REV`` (a git revision: HEAD, a commit id, a tag): before and after in one run,
for a change that must not slow the normal path (issue 14: within 5%). REV's tree is checked
out with ``git worktree add --detach`` inside the temporary directory (and removed with
``git worktree remove --force`` at the end, also when a run fails or on SIGTERM); its irtool
runs from there, the working tree's from this repository, both from the same venv, against
the same sshd farm, each with its own IRTOOL_HOME (fresh incidents), and each side prints its
``irtool.__file__`` at the start, to show which code it runs. Both trees are byte-compiled
before the first timed run. In every repeat, each scenario (N hosts, one host, and the memory
run, which with ``--baseline`` is repeated too) runs for both sides back to back, the side
going first alternating from repeat to repeat (after, before; then before, after; ...), so
that drift of the machine hits both alike. For each figure (wall and tool cpu of the N-host
and of the one-host triage, wall, tool cpu and peak RSS of the memory run) it prints the
median of each side, the ratio after/before of each pair, their median, and PASS when that
median is <= 1.05; the usual table and targets, printed first, are the working tree's. Ansible
does not depend on the revision and is skipped with ``--baseline`` unless ``--ansible``; the
control runs once a repeat, and each side's own CPU per remote command is taken from it.

``--baseline-tree DIR`` does the same with the 'before' irtool from DIR, a tree already checked
out (a git worktree of the revision; no worktree is added or removed), e.g.
``--baseline-tree /tmp/before``. For the issue's figures:

    .venv/bin/python bench/remote.py --baseline HEAD

and ``--quick --no-ansible --baseline HEAD`` as a smoke check (about a minute).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import re
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.sshd import SshdFarm, SshHost  # noqa: E402

MiB = 1024 * 1024
STEP = "triage"
MEMORY_STEP = "bulk"
MEMORY_HOSTS = 4
RUN_TIMEOUT = 900.0
SETTLE_S = 10.0
"""How long to wait for the sshd instances to reap what a run started, before reading CPU."""
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
WITHIN = 1.05
"""--baseline: a figure passes when the median of its after/before ratios is at most this."""

# A first look at a Linux web server: read-only, every one does real work, and each must
# exit 0 here (a benchmark of failures would measure nothing).
TRIAGE: list[tuple[str, str, str]] = [
    ("kernel", "Kernel and machine", "uname -a"),
    ("uptime", "Uptime and load", "uptime"),
    (
        "processes",
        "Every process with its parent, owner and age",
        "ps -eo pid,ppid,user,etime,args",
    ),
    ("sockets", "TCP sockets and their processes", "ss -tanp || netstat -tan"),
    ("etc-listing", "What is in /etc", "ls -la /etc"),
    (
        "etc-changed",
        "Files in /etc changed since the host was named",
        "find /etc -maxdepth 2 -newer /etc/hostname -type f",
    ),
    ("accounts", "Local accounts", "cat /etc/passwd"),
    ("disks", "Mounted file systems", "df -h"),
    ("interfaces", "Network interfaces", "ip addr || cat /proc/net/dev"),
    ("config-hashes", "Hashes of the top-level config files", "sha256sum /etc/*.conf"),
]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    """A run failed or could not be verified: its timing would mean nothing."""


def check(ok: bool, what: str, result: subprocess.CompletedProcess[str] | None = None) -> None:
    if ok:
        return
    detail = ""
    if result is not None:
        detail = f"\nexit {result.returncode}\nstdout:\n{result.stdout[-3000:]}"
        detail += f"\nstderr:\n{result.stderr[-3000:]}"
    raise BenchError(what + detail)


# -- the hosts ---------------------------------------------------------------------------


class BenchFarm(SshdFarm):
    """The test farm, with commands run under an empty HOME unless ``user_rc``.

    sshd starts each command through the user's login shell, and Debian's bash reads
    ~/.bashrc when sshd starts it: the benchmarking user's own rc files (a ``pyenv init``
    costs ~100 ms) would be timed on every command of both tools, and on 50 hosts at once
    would swamp the cores. ``SetEnv HOME`` gives the sessions an empty home instead, as on a
    freshly built server. (``_write_config`` is the farm's own hook for its config file.)
    """

    def __init__(self, directory: Path, count: int, user_rc: bool = False) -> None:
        super().__init__(directory, count)
        self.user_rc = user_rc
        self.login_home = self.directory / "login-home"

    def _write_config(self, path: Path, port: int, host_key: Path) -> None:
        super()._write_config(path, port, host_key)
        if not self.user_rc:
            self.login_home.mkdir(parents=True, exist_ok=True)
            with path.open("a") as config:
                config.write(f'SetEnv HOME="{self.login_home}"\n')


@dataclass
class Sample:
    wall: float
    tool_cpu: float
    hosts_cpu: float


class Meter:
    """Wall time of a run, and the CPU its client and its hosts spent on it."""

    def __init__(self, farm: SshdFarm) -> None:
        self.farm = farm
        self._began = self._tool = self._hosts = 0.0

    def hosts_cpu(self) -> float:
        """utime+stime of every sshd, and of everything it started and reaped."""
        ticks = 0
        for host in self.farm.hosts:
            stat = Path(f"/proc/{host.process.pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            ticks += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
        return ticks / CLOCK_TICK

    def settle(self) -> None:
        """Wait until no sshd has a child left: what a run started is reaped and counted."""
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline:
            try:
                busy = any(
                    Path(f"/proc/{h.process.pid}/task/{h.process.pid}/children").read_text().strip()
                    for h in self.farm.hosts
                )
            except OSError:  # no children file in this kernel: give them a moment
                time.sleep(1)
                return
            if not busy:
                return
            time.sleep(0.02)

    @staticmethod
    def tool_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def start(self) -> None:
        self.settle()
        self._hosts, self._tool = self.hosts_cpu(), self.tool_cpu()
        self._began = time.perf_counter()

    def lap(self) -> float:
        return time.perf_counter() - self._began

    def finish(self, wall: float) -> Sample:
        tool = self.tool_cpu() - self._tool
        self.settle()
        return Sample(wall, tool, self.hosts_cpu() - self._hosts)


# -- files -------------------------------------------------------------------------------


def runbook(path: Path, step: dict[str, object]) -> Path:
    document = {
        "id": f"bench-{step['id']}",
        "title": f"Benchmark: {step['title']}",
        "version": "1.0",
        "severity": "high",
        "summary": "Collect from every web server of the fleet.",
        "triggers": ["A benchmark run."],
        "activation": {"may_activate": ["incident-commander"], "criteria": "Always."},
        "roles": ["incident-commander", "security"],
        "phases": [{"id": "collect", "title": "Collect", "steps": [step]}],
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def triage_step() -> dict[str, object]:
    return {
        "id": STEP,
        "type": "collect",
        "title": "First triage of Linux web servers",
        "owner": "security",
        "targets": ["group:fleet"],
        "shell": "sh",
        "timeout": 600,
        "commands": [
            {"id": item, "title": title, "command": command} for item, title, command in TRIAGE
        ],
    }


def bulk_step(size: int) -> dict[str, object]:
    return {
        "id": MEMORY_STEP,
        "type": "collect",
        "title": "Bulk output",
        "owner": "security",
        "targets": ["group:bulk"],
        "shell": "sh",
        "timeout": 900,
        # Text that differs per host: content addressing must keep every byte.
        "command": f"yes irtool bench output from {{{{ host.name }}}} | head -c {size}",
    }


def inventory(path: Path, farm: SshdFarm, hosts: Sequence[SshHost], bulk: int = 0) -> Path:
    document = {
        "defaults": {
            "transport": "ssh",
            "os": "linux",
            "user": farm.user,
            "auth": "key",
            "identity_file": str(farm.client_key),
            "connect_timeout": 60,
        },
        "hosts": {
            host.name: {
                "address": host.address,
                "port": host.port,
                "host_key": host.fingerprint,
                "groups": ["fleet", "bulk"] if index < bulk else ["fleet"],
            }
            for index, host in enumerate(hosts)
        },
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


# -- irtool ------------------------------------------------------------------------------


class Irtool:
    """irtool from the source tree ``tree``, run from ``cwd`` (one without an irtool in it)."""

    def __init__(
        self, home: Path, env: dict[str, str], meter: Meter, tree: Path, cwd: Path
    ) -> None:
        self.home = home
        self.tree = tree
        self.cwd = cwd
        path = [str(tree), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        self.env = {
            **env,
            "IRTOOL_HOME": str(home),
            "IRTOOL_RESPONDER": "bench",
            "PYTHONPATH": os.pathsep.join(path),
        }
        self.meter = meter

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "irtool", *args]

    def _run(self, argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.cwd,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return self._run(self.argv(*args), timeout)

    def origin(self) -> str:
        """``irtool.__file__`` as these processes import it; it must lie in ``tree``."""
        result = self._run([sys.executable, "-c", "import irtool; print(irtool.__file__)"], 60)
        check(result.returncode == 0, f"import irtool from {self.tree}", result)
        found = result.stdout.strip()
        expected = self.tree / "irtool" / "__init__.py"
        check(
            Path(found).resolve() == expected.resolve(),
            f"irtool imported from {found}, not from {expected}",
            result,
        )
        return found

    def compile(self) -> None:
        """Byte-compile the tree, so that no timed run pays for it (a fresh checkout has none)."""
        self._run([sys.executable, "-m", "compileall", "-qq", str(self.tree / "irtool")], 300)

    def validate(self, *files: Path) -> None:
        result = self.cli("validate", *map(str, files))
        check(result.returncode == 0, f"irtool validate {' '.join(map(str, files))}", result)

    def new(self, book: Path, hosts: Path) -> str:
        result = self.cli("incident", "new", str(book), "--inventory", str(hosts), "--json")
        check(result.returncode == 0, "irtool incident new", result)
        return str(json.loads(result.stdout)["id"])

    def run(
        self, incident: str, step: str, pool: int, commands: int, wrap: Sequence[str] = ()
    ) -> Sample:
        """The timed run; then its checks (exit 0, every host ok, `irtool verify`)."""
        argv = [*wrap, *self.argv("incident", "run", incident, step, "--parallel", str(pool))]
        self.meter.start()
        result = self._run([*argv, "--json"], RUN_TIMEOUT)
        sample = self.meter.finish(self.meter.lap())
        check(result.returncode == 0, f"irtool incident run {incident} {step}", result)
        report = json.loads(result.stdout)
        bad = {
            host: outcome
            for host, outcome in report["hosts"].items()
            if not outcome["ok"] or outcome["exit_statuses"] != [0] * commands
        }
        check(not bad and report["completed_step"], f"irtool run not clean: {bad}", result)
        verified = self.cli("verify", incident, "--json", timeout=RUN_TIMEOUT)
        check(verified.returncode == 0, f"irtool verify {incident}", verified)
        return sample

    def evidence_bytes(self, incident: str) -> int:
        """The bytes the commands brought back (not what each host said it is on first
        contact, which is evidence too)."""
        folder = self.home / "incidents" / incident
        uri = f"file:{folder / 'journal.sqlite'}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            said = db.execute("SELECT data FROM events WHERE kind = 'host.facts'").fetchall()
        probes = {json.loads(data).get("output", {}).get("sha256") for (data,) in said}
        named = [
            p
            for p in (folder / "evidence").iterdir()
            if re.fullmatch(r"[0-9a-f]{64}", p.name) and p.name not in probes
        ]
        return sum(p.stat().st_size for p in named)

    def triage(self, book: Path, hosts: Path, count: int) -> Sample:
        return self.run(self.new(book, hosts), STEP, count, len(TRIAGE))


@dataclass
class Memory:
    sample: Sample
    peak_rss_mb: float
    collected: int
    how: str


RUSAGE_WRAPPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[2:]).returncode\n"
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "sys.exit(code)\n"
)


def memory_run(tool: Irtool, book: Path, hosts: Path, report: Path, expected: int) -> Memory:
    """The memory run; ``report`` is the file the RSS measurement writes."""
    incident = tool.new(book, hosts)
    gnu_time = Path("/usr/bin/time")
    if gnu_time.is_file() and os.access(gnu_time, os.X_OK):
        wrap = [str(gnu_time), "-v", "-o", str(report)]
        how = "/usr/bin/time -v"
    else:
        wrap = [sys.executable, "-c", RUSAGE_WRAPPER, str(report)]
        how = "getrusage(RUSAGE_CHILDREN) in a wrapper"
    sample = tool.run(incident, MEMORY_STEP, MEMORY_HOSTS, 1, wrap)
    text = report.read_text()
    if wrap[0] == str(gnu_time):
        found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
        check(found is not None, f"no peak RSS in /usr/bin/time's report:\n{text}")
        assert found is not None
        kib = int(found[1])
    else:
        kib = int(text.strip())  # Linux reports ru_maxrss in KiB
    collected = tool.evidence_bytes(incident)
    check(collected == expected, f"evidence holds {collected} bytes, expected {expected}")
    shutil.rmtree(tool.home / "incidents" / incident)  # measured and verified: free the disk
    return Memory(sample, kib / 1024, collected, how)


def median_memory(memories: Sequence[Memory]) -> Memory:
    """Each figure's median over the memory runs (the run itself when there is one)."""
    return Memory(
        Sample(
            statistics.median(m.sample.wall for m in memories),
            statistics.median(m.sample.tool_cpu for m in memories),
            statistics.median(m.sample.hosts_cpu for m in memories),
        ),
        statistics.median(m.peak_rss_mb for m in memories),
        memories[0].collected,
        memories[0].how,
    )


# -- the bare-paramiko control ------------------------------------------------------------


class Control:
    """bench/remote_control.py: the same connects, logins and exec channels as an irtool run
    of the triage, with bare paramiko: per host a first connection for the facts probe (irtool's
    first contact with a host in an incident), a second for the ten commands, each command line
    exactly as irtool sends it (``sh -c`` and the script quoted), the same parallelism."""

    SCRIPT = Path(__file__).resolve().parent / "remote_control.py"

    def __init__(self, work: Path, farm: SshdFarm, env: dict[str, str], meter: Meter) -> None:
        from irtool.model.facts import LINUX_PROBE
        from irtool.model.quoting import sh_literal

        self.work, self.farm, self.meter = work, farm, meter
        self.env = env
        self.connections = [
            ["sh -c " + sh_literal(LINUX_PROBE)],
            ["sh -c " + sh_literal(command) for _item, _title, command in TRIAGE],
        ]

    @property
    def per_host(self) -> int:
        """Exec channels per host: the probe and the triage's commands."""
        return sum(len(lines) for lines in self.connections)

    def triage(self, hosts: Sequence[SshHost], pool: int) -> Sample:
        spec = self.work / f"control-{len(hosts)}.json"
        spec.write_text(
            json.dumps(
                {
                    "user": self.farm.user,
                    "key": str(self.farm.client_key),
                    "parallel": pool,
                    "hosts": [
                        {"address": h.address, "port": h.port, "pin": h.fingerprint} for h in hosts
                    ],
                    "connections": self.connections,
                }
            )
        )
        self.meter.start()
        result = subprocess.run(
            [sys.executable, str(self.SCRIPT), str(spec)],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.work,
            timeout=RUN_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        sample = self.meter.finish(self.meter.lap())
        check(result.returncode == 0, f"bare paramiko on {len(hosts)} host(s)", result)
        return sample


# -- Ansible -----------------------------------------------------------------------------


class Ansible:
    def __init__(self, work: Path, farm: SshdFarm, env: dict[str, str], meter: Meter) -> None:
        self.work = work
        self.meter = meter
        self.bin = Path(sys.executable).parent / "ansible"
        self.inventory = work / "ansible-hosts.ini"
        self.known_hosts = farm.known_hosts(work / "known_hosts")
        self.config = work / "ansible.cfg"
        self.runs = 0
        lines = ["[fleet]"]
        for host in farm.hosts:
            lines.append(
                f"{host.name} ansible_host={host.address} ansible_port={host.port} "
                f"ansible_user={farm.user} ansible_ssh_private_key_file={farm.client_key} "
                f"ansible_python_interpreter={sys.executable}"
            )
        self.inventory.write_text("\n".join(lines) + "\n")
        (work / "ansible-local").mkdir()
        self.config.write_text(
            "\n".join(
                [
                    "[defaults]",
                    f"inventory = {self.inventory}",
                    f"forks = {len(farm.hosts)}",
                    "host_key_checking = True",
                    "gathering = explicit",
                    f"local_tmp = {work / 'ansible-local'}",
                    f"remote_tmp = {work / 'ansible-remote'}",
                    "retry_files_enabled = False",
                    "deprecation_warnings = False",
                    "",
                    "[ssh_connection]",
                    f"ssh_args = -o UserKnownHostsFile={self.known_hosts} "
                    "-o StrictHostKeyChecking=yes -o ControlMaster=auto -o ControlPersist=60s",
                    "pipelining = True",
                    "",
                ]
            )
        )
        self.env = {
            **env,
            "ANSIBLE_CONFIG": str(self.config),
            "LC_ALL": "C.UTF-8",
            "LANG": "C.UTF-8",
            "PATH": f"{self.bin.parent}{os.pathsep}{env.get('PATH', '')}",
        }

    def version(self) -> str:
        out = subprocess.run(
            [str(self.bin), "--version"], capture_output=True, text=True, env=self.env, check=True
        )
        return out.stdout.splitlines()[0]

    def triage(self, pattern: str, hosts: int) -> Sample:
        """The ten commands, one ad-hoc run each, timed together from no live connection."""
        self.runs += 1
        control = self.work / f"cp{self.runs}"
        control.mkdir()
        env = {**self.env, "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control)}
        results = []
        self.meter.start()
        try:
            for _item, _title, command in TRIAGE:
                argv = [str(self.bin), pattern, "-f", str(hosts), "-m", "shell", "-a", command]
                results.append(
                    subprocess.run(
                        argv,
                        capture_output=True,
                        text=True,
                        env=env,
                        timeout=RUN_TIMEOUT,
                        stdin=subprocess.DEVNULL,
                        check=False,
                    )
                )
            wall = self.meter.lap()
        finally:
            self._stop_masters(control)
        sample = self.meter.finish(wall)
        for (_item, _title, command), result in zip(TRIAGE, results, strict=True):
            ok = len(re.findall(r"^\S+ \| CHANGED \| rc=0 >>$", result.stdout, re.M))
            check(
                result.returncode == 0 and ok == hosts,
                f"ansible {pattern} '{command}': {ok} of {hosts} hosts ok",
                result,
            )
        return sample

    @staticmethod
    def _stop_masters(control: Path) -> None:
        # The next repeat must pay for its connections as the first did.
        for socket_path in control.iterdir():
            subprocess.run(
                ["ssh", "-S", str(socket_path), "-O", "exit", "bench"],
                capture_output=True,
                timeout=30,
                check=False,
            )


def ensure_ansible() -> None:
    if (Path(sys.executable).parent / "ansible").is_file():
        return
    log("ansible is missing: installing ansible-core into this venv (pip install ansible-core)")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "ansible-core"], check=True)


# -- the baseline ------------------------------------------------------------------------


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False
    )


@dataclass
class Revision:
    """What ``--baseline REV`` names, and how far the working tree's irtool is from it."""

    rev: str
    commit: str
    short: str
    subject: str
    changed: int
    """Files under irtool/ that differ between REV and the working tree (untracked included)."""


def resolve(rev: str) -> Revision | None:
    found = git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}")
    if found.returncode:
        return None
    commit = found.stdout.strip()
    short, _, subject = git("log", "-1", "--format=%h %s", commit).stdout.strip().partition(" ")
    tracked = git("diff", "--name-only", commit, "--", "irtool").stdout.splitlines()
    untracked = git("ls-files", "--others", "--exclude-standard", "--", "irtool").stdout
    changed = len(set(tracked) | set(untracked.splitlines()))
    return Revision(rev, commit, short, subject, changed)


def described(tree: Path) -> Revision:
    """What ``--baseline-tree DIR`` holds: its commit when it is a git checkout (read only)."""
    found = subprocess.run(
        ["git", "-C", str(tree), "log", "-1", "--format=%H %h %s"],
        capture_output=True,
        text=True,
        check=False,
    )
    commit, short, subject = [*found.stdout.strip().split(" ", 2), "", "", ""][:3]
    if found.returncode or not commit:
        return Revision(str(tree), "", "?", "(not a git checkout)", -1)
    tracked = git("diff", "--name-only", commit, "--", "irtool").stdout.splitlines()
    untracked = git("ls-files", "--others", "--exclude-standard", "--", "irtool").stdout
    changed = len(set(tracked) | set(untracked.splitlines()))
    return Revision(str(tree), commit, short, subject, changed)


@contextlib.contextmanager
def checkout(revision: Revision, where: Path) -> Iterator[Path]:
    """REV's tree at ``where``, a detached git worktree, removed again however the run ends."""
    added = git("worktree", "add", "--detach", str(where), revision.commit)
    check(added.returncode == 0, f"git worktree add --detach {where} {revision.commit}", added)
    try:
        yield where
    finally:
        removed = git("worktree", "remove", "--force", str(where))
        if removed.returncode:
            log(f"could not remove the git worktree {where}: {removed.stderr.strip()}")


@dataclass
class Side:
    """One tree's irtool and what it measured: the working tree ('after') or REV ('before')."""

    name: str
    tool: Irtool
    tag: str
    """Appended to its lines of progress: empty without --baseline."""
    origin: str = ""
    runs: dict[str, list[Sample]] = field(default_factory=dict)
    memories: list[Memory] = field(default_factory=list)


# -- running and reporting ---------------------------------------------------------------


def measure(
    label: str, runs: dict[str, list[Sample]], key: str, action: Callable[[], Sample]
) -> None:
    sample = action()
    runs.setdefault(key, []).append(sample)
    log(
        f"  {label}: {sample.wall:.2f} s (tool cpu {sample.tool_cpu:.2f} s, "
        f"hosts cpu {sample.hosts_cpu:.2f} s)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory-mib", type=int, default=1024, help="total output (MiB)")
    parser.add_argument("--quick", action="store_true", help="5 hosts, 64 MiB, one repeat")
    parser.add_argument("--no-ansible", action="store_true", help="skip the Ansible runs")
    parser.add_argument(
        "--user-rc",
        action="store_true",
        help="run host commands with your real HOME, so bash reads your ~/.bashrc each time",
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="measure git revision REV's irtool too (the 'before'), in pairs with the working "
        "tree's (the 'after'), and compare: within 5%% or not; skips Ansible unless --ansible",
    )
    parser.add_argument(
        "--baseline-tree",
        metavar="DIR",
        type=Path,
        help="as --baseline, with the 'before' irtool from DIR, a tree already checked out (a "
        "git worktree of the revision): no git worktree is added or removed",
    )
    parser.add_argument(
        "--ansible", action="store_true", help="with --baseline(-tree): run Ansible too"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.hosts, args.repeat, args.memory_mib = 5, 1, 64
    if args.hosts < MEMORY_HOSTS:
        parser.error(f"--hosts must be at least {MEMORY_HOSTS}")
    if args.memory_mib % MEMORY_HOSTS:
        parser.error(f"--memory-mib must divide by {MEMORY_HOSTS}")
    per_host = args.memory_mib * MiB // MEMORY_HOSTS
    revision = None
    skipped = "--no-ansible"
    if args.baseline is not None and args.baseline_tree is not None:
        parser.error("--baseline and --baseline-tree: one or the other")
    if args.baseline is not None:
        revision = resolve(args.baseline)
        if revision is None:
            parser.error(f"--baseline: {args.baseline!r} names no commit of {ROOT}")
    if args.baseline_tree is not None:
        if not (args.baseline_tree / "irtool" / "__init__.py").is_file():
            parser.error(f"--baseline-tree: {args.baseline_tree} holds no irtool/ package")
        revision = described(args.baseline_tree.resolve())
    if revision is not None and not (args.ansible or args.no_ansible):
        args.no_ansible, skipped = True, "--baseline without --ansible"
    if not args.no_ansible:
        ensure_ansible()

    load_before = os.getloadavg()
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="irtool-bench-")))
        home = work / "home"
        home.mkdir()
        # A home of its own: no ~/.ssh/config, ~/.ansible or known_hosts of the user's leaks in.
        env = {**os.environ, "HOME": str(home)}
        trees = [("after", ROOT)]
        if revision and args.baseline_tree is not None:
            log(f"before: the tree {revision.rev} ({revision.short} {revision.subject})")
            trees.append(("before", args.baseline_tree.resolve()))
        elif revision:
            log(f"checking out {revision.rev} ({revision.short} {revision.subject}) ...")
            trees.append(("before", stack.enter_context(checkout(revision, work / "baseline"))))
        log(f"starting {args.hosts} sshd on 127.0.0.1 ...")
        began = time.perf_counter()
        farm = stack.enter_context(BenchFarm(work / "farm", args.hosts, args.user_rc))
        log(f"  {args.hosts} sshd ready in {time.perf_counter() - began:.1f} s")
        meter = Meter(farm)
        book = runbook(work / "triage.yaml", triage_step())
        bulk = runbook(work / "bulk.yaml", bulk_step(per_host))
        fleet = inventory(work / "fleet.yaml", farm, farm.hosts, bulk=MEMORY_HOSTS)
        single = inventory(work / "single.yaml", farm, farm.hosts[:1])
        sides = [
            Side(
                name,
                Irtool(work / f"irtool-home-{name}", env, meter, tree, work),
                f" [{name}]" if revision else "",
            )
            for name, tree in trees
        ]
        for side in sides:
            side.tool.compile()
            side.origin = side.tool.origin()
            log(f"irtool{side.tag} from {side.origin}")
            side.tool.validate(book, bulk, fleet)
        ansible = None if args.no_ansible else Ansible(work, farm, env, meter)
        version = ansible.version() if ansible else ""
        control = Control(work, farm, env, meter)

        def memory(side: Side) -> None:
            log(f"memory: {args.memory_mib} MiB from {MEMORY_HOSTS} hosts{side.tag} ...")
            rss = work / f"rss-{side.name}.txt"
            done = memory_run(side.tool, bulk, fleet, rss, per_host * MEMORY_HOSTS)
            side.memories.append(done)
            log(f"  {done.sample.wall:.2f} s, peak RSS {done.peak_rss_mb:.1f} MB")

        n = args.hosts
        controls: dict[str, list[Sample]] = {}
        scenarios = [
            (f"irtool, {n} hosts", "irtool-n", fleet, farm.hosts),
            ("irtool, 1 host", "irtool-1", single, farm.hosts[:1]),
        ]
        for round_ in range(1, args.repeat + 1):
            log(f"repeat {round_} of {args.repeat}:")
            # With --baseline the two sides take turns at going first.
            order = sides if round_ % 2 else sides[::-1]
            for label, key, hosts, reached in scenarios:
                pool = len(reached)
                for side in order:
                    triage = functools.partial(side.tool.triage, book, hosts, pool)
                    measure(label + side.tag, side.runs, key, triage)
                # The control's wire work, in the same repeat: what irtool's own CPU is over.
                bare = functools.partial(control.triage, reached, pool)
                measure(label.replace("irtool", "bare paramiko"), controls, key, bare)
            if ansible:
                measure(
                    f"ansible, {n} hosts",
                    sides[0].runs,
                    "ansible-n",
                    lambda: ansible.triage("all", n),
                )
                measure(
                    "ansible, 1 host", sides[0].runs, "ansible-1", lambda: ansible.triage("h1", 1)
                )
            if revision:
                for side in order:
                    memory(side)
        if not revision:
            memory(sides[0])
    after = sides[0]
    if revision:
        print(f"the working tree (the 'after'; --baseline {revision.rev} compared below):")
    report(
        args,
        after.runs,
        median_memory(after.memories),
        version,
        skipped,
        load_before,
        os.getloadavg(),
    )
    own_cpu(args.hosts, control.per_host, after.runs, controls)
    if revision:
        compare(args, revision, before=sides[1], after=after)
        own_cpu_compare(args.hosts, control.per_host, sides[1], after, controls)
    return 0


def _median(samples: list[Sample], attribute: str) -> float:
    return float(statistics.median(getattr(s, attribute) for s in samples))


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(
    args: argparse.Namespace,
    runs: dict[str, list[Sample]],
    memory: Memory,
    ansible_version: str,
    ansible_skipped: str,
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> None:
    n, cores = args.hosts, os.cpu_count() or 1
    home = "the user's own HOME (--user-rc)" if args.user_rc else "an empty HOME"
    print(
        f"{len(TRIAGE)}-command triage over SSH on 127.0.0.1: {n} sshd (sessions with {home}), "
        f"{cores} cores, median of {args.repeat} run(s)"
    )
    print(
        f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}"
        + (f"; {ansible_version}, pipelining on" if ansible_version else "")
    )
    print(
        f"ratio = wall / irtool on {n} hosts; floor = (tool cpu + hosts cpu) / {cores} cores, "
        "the least wall time the CPU work allows on this machine"
    )
    rows = [
        (f"irtool run --parallel {n}, {n} hosts", "irtool-n"),
        ("irtool run, 1 host", "irtool-1"),
    ]
    if ansible_version:
        rows.append((f"ansible -f {n}, {len(TRIAGE)} ad-hoc runs, {n} hosts", "ansible-n"))
        rows.append((f"ansible, {len(TRIAGE)} ad-hoc runs, 1 host", "ansible-1"))
    ours_n, ours_1 = _median(runs["irtool-n"], "wall"), _median(runs["irtool-1"], "wall")
    header = f"  {'scenario':<44} {'wall s':>7} {'ratio':>7} {'tool cpu':>9} {'hosts cpu':>10}"
    print(header + f" {'floor s':>8}   wall of each run")
    for label, key in rows:
        wall = _median(runs[key], "wall")
        tool, hosts = _median(runs[key], "tool_cpu"), _median(runs[key], "hosts_cpu")
        each = " ".join(f"{s.wall:.2f}" for s in runs[key])
        print(
            f"  {label:<44} {wall:7.2f} {wall / ours_n:6.2f}x {tool:9.2f} {hosts:10.2f} "
            f"{(tool + hosts) / cores:8.2f}   {each}"
        )
    mib = memory.collected / MiB
    sample = memory.sample
    print(
        f"  {f'irtool run, {mib:.0f} MiB from {MEMORY_HOSTS} hosts':<44} {sample.wall:7.2f} "
        f"{'':>7} {sample.tool_cpu:9.2f} {sample.hosts_cpu:10.2f} "
        f"{(sample.tool_cpu + sample.hosts_cpu) / cores:8.2f}   "
        f"{mib / sample.wall:.1f} MiB/s, peak RSS {memory.peak_rss_mb:.1f} MB ({memory.how})"
    )
    print("targets:")
    scaling = ours_n / ours_1
    print(
        f"  irtool {n} hosts / irtool 1 host = {ours_n:.2f} / {ours_1:.2f} = {scaling:.2f}x "
        f"(target <= 1.5x): {verdict(scaling <= 1.5)}"
    )
    if ansible_version:
        theirs = _median(runs["ansible-n"], "wall")
        speedup = theirs / ours_n
        print(
            f"  ansible {n} hosts / irtool {n} hosts = {theirs:.2f} / {ours_n:.2f} = "
            f"{speedup:.2f}x (target >= 3x): {verdict(speedup >= 3)}"
        )
    else:
        print(f"  ansible / irtool: not measured ({ansible_skipped})")
    print(
        f"  peak RSS collecting {mib:.0f} MiB = {memory.peak_rss_mb:.1f} MB "
        f"(target < 200 MB): {verdict(memory.peak_rss_mb < 200)}"
    )


# -- irtool's own CPU per remote command -----------------------------------------------------

OWN_CPU_TARGET_MS = 1.0
"""The issue's target: irtool's own CPU per remote command, on top of paramiko's wire work."""


@dataclass(frozen=True)
class OwnCpu:
    """irtool's CPU beyond bare paramiko's for the same wire work, per exec channel (ms), from
    one repeat's runs: on N hosts, on one host (both with irtool's start-up: interpreter,
    imports, journal), and per command once started (N hosts less one host, for both)."""

    many: float
    one: float
    marginal: float


def own_cpu_of(
    n: int, per_host: int, many: Sample, one: Sample, bare_many: Sample, bare_one: Sample
) -> OwnCpu:
    return OwnCpu(
        1000 * (many.tool_cpu - bare_many.tool_cpu) / (n * per_host),
        1000 * (one.tool_cpu - bare_one.tool_cpu) / per_host,
        1000
        * ((many.tool_cpu - one.tool_cpu) - (bare_many.tool_cpu - bare_one.tool_cpu))
        / max(1, (n - 1) * per_host),
    )


def own_cpus(
    n: int, per_host: int, runs: dict[str, list[Sample]], controls: dict[str, list[Sample]]
) -> list[OwnCpu]:
    """One per repeat, each from the runs of that repeat."""
    return [
        own_cpu_of(n, per_host, *four)
        for four in zip(
            runs["irtool-n"], runs["irtool-1"], controls["irtool-n"], controls["irtool-1"],
            strict=True,
        )
    ]  # fmt: skip


def own_cpu(
    n: int, per_host: int, runs: dict[str, list[Sample]], controls: dict[str, list[Sample]]
) -> None:
    """The bare-paramiko control beside irtool, and irtool's own CPU per remote command."""
    print(
        f"irtool's own CPU per remote command: irtool's tool cpu less bare paramiko's "
        f"(bench/remote_control.py: the same connects, logins and {per_host} exec channels a "
        f"host, the facts probe and the {per_host - 1} commands), per exec channel"
    )
    print(f"  {'run':<44} {'wall s':>7} {'tool cpu':>9} {'hosts cpu':>10}   tool cpu of each run")
    for label, key in ((f"{n} hosts", "irtool-n"), ("1 host", "irtool-1")):
        for who, samples in (("irtool", runs[key]), ("bare paramiko", controls[key])):
            each = " ".join(f"{s.tool_cpu:.2f}" for s in samples)
            print(
                f"  {f'{who}, {label}':<44} {_median(samples, 'wall'):7.2f} "
                f"{_median(samples, 'tool_cpu'):9.2f} {_median(samples, 'hosts_cpu'):10.2f}   "
                f"{each}"
            )
    found = own_cpus(n, per_host, runs, controls)
    many = statistics.median(f.many for f in found)
    one = statistics.median(f.one for f in found)
    marginal = statistics.median(f.marginal for f in found)
    print(
        f"  {n} hosts, start-up included: {many:.2f} ms a command "
        f"({n} x {per_host} = {n * per_host} commands)"
    )
    print(f"  1 host, start-up included: {one:.2f} ms a command ({per_host} commands)")
    print(
        f"  once started ({n} hosts less 1 host, both sides): {marginal:.2f} ms a command "
        f"(target <= {OWN_CPU_TARGET_MS:g} ms): {verdict(marginal <= OWN_CPU_TARGET_MS)}"
    )


def own_cpu_compare(
    n: int, per_host: int, before: Side, after: Side, controls: dict[str, list[Sample]]
) -> None:
    """Before and after, each repeat's figures from that repeat's control."""
    old = own_cpus(n, per_host, before.runs, controls)
    new = own_cpus(n, per_host, after.runs, controls)
    print("  irtool's own CPU per remote command, ms (less bare paramiko's, the same repeat's)")
    print(f"  {'figure':<36} {'before':>8} {'after':>8}   after of each repeat")
    for label, attribute in (
        (f"{n} hosts, start-up included", "many"),
        ("1 host, start-up included", "one"),
        ("once started", "marginal"),
    ):
        values = [getattr(f, attribute) for f in new]
        print(
            f"  {label:<36} {statistics.median(getattr(f, attribute) for f in old):8.2f} "
            f"{statistics.median(values):8.2f}   " + " ".join(f"{v:.2f}" for v in values)
        )


def ratio(after: float, before: float) -> float:
    if before > 0:
        return after / before
    return 1.0 if after == 0 else math.inf


def compare(args: argparse.Namespace, revision: Revision, before: Side, after: Side) -> None:
    """--baseline: each figure's median on each side, and the after/before ratio of each pair."""
    n, memory = args.hosts, f"{args.memory_mib} MiB from {MEMORY_HOSTS} hosts"

    def figures(side: Side) -> list[tuple[str, list[float]]]:
        many, one, bulk = side.runs["irtool-n"], side.runs["irtool-1"], side.memories
        return [
            (f"triage, {n} hosts: wall s", [s.wall for s in many]),
            (f"triage, {n} hosts: tool cpu s", [s.tool_cpu for s in many]),
            ("triage, 1 host: wall s", [s.wall for s in one]),
            ("triage, 1 host: tool cpu s", [s.tool_cpu for s in one]),
            (f"{memory}: wall s", [m.sample.wall for m in bulk]),
            (f"{memory}: tool cpu s", [m.sample.tool_cpu for m in bulk]),
            (f"{memory}: peak RSS MB", [m.peak_rss_mb for m in bulk]),
        ]

    print()
    print(
        f"before/after: {args.repeat} pair(s) of runs, each pair back to back, the side going "
        "first alternating from repeat to repeat"
    )
    print(f"  before = {revision.rev} = {revision.short} {revision.subject[:60].rstrip()}")
    print(f"           irtool from {before.origin}")
    print(
        f"  after  = the working tree, {revision.changed} file(s) under irtool/ differ from "
        f"{revision.short}"
    )
    print(f"           irtool from {after.origin}")
    print(
        f"  ratio = after / before of one pair; PASS when the median ratio <= {WITHIN:.2f} "
        "(within 5%)"
    )
    print(
        f"  {'figure':<36} {'before':>8} {'after':>8} {'ratio':>7} {'change':>7}  verdict"
        "  ratio of each pair"
    )
    every = True
    for (label, old), (_label, new) in zip(figures(before), figures(after), strict=True):
        ratios = [ratio(a, b) for a, b in zip(new, old, strict=True)]
        middle = statistics.median(ratios)
        ok = middle <= WITHIN
        every = every and ok
        print(
            f"  {label:<36} {statistics.median(old):8.2f} {statistics.median(new):8.2f} "
            f"{middle:7.3f} {(middle - 1) * 100:+6.1f}%  {verdict(ok):<7}  "
            + " ".join(f"{r:.3f}" for r in ratios)
        )
    print(f"  every figure within 5% of {revision.rev}: {verdict(every)}")


def _terminated(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # so that the farm stops and the worktree goes


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminated)
    try:
        sys.exit(main())
    except BenchError as failed:
        print(f"bench/remote.py: FAILED: {failed}", file=sys.stderr)
        sys.exit(1)
