"""Many hosts at once: descriptors raised and counted, one watchdog thread for every deadline."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from irtool.engine.runner import Runner, RunReport
from irtool.engine.session import IncidentSession
from irtool.evidence.store import EvidenceStore
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.model.inventory import Inventory
from irtool.model.steps import Shell
from irtool.remote.base import Deadline, Watchdog
from irtool.remote.limits import (
    RESERVE,
    descriptors,
    fit_parallel,
    per_host,
    raise_descriptor_limit,
)
from irtool.remote.local import LocalTransport
from irtool.remote.ssh import SshTransport
from irtool.secrets.run import RunSecrets
from irtool.tui.app import IrtoolApp
from irtool.tui.screens.run import RunScreen
from tests.support.remote import run
from tests.support.runbooks import open_collect_incident
from tests.support.sshd import SshdFarm
from tests.support.tui import notifications, opened, wait_for


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdFarm]:
    with SshdFarm(tmp_path_factory.mktemp("sshd"), count=2) as started:
        yield started


def ssh_host(farm: SshdFarm, index: int) -> dict[str, Any]:
    return {
        "address": "127.0.0.1",
        "port": farm[index].port,
        "transport": "ssh",
        "user": farm.user,
        "auth": "key",
        "identity_file": str(farm.client_key),
        "host_key": farm[index].fingerprint,
        "connect_timeout": 10,
    }


LOCAL = {"address": "localhost", "transport": "local"}


def ssh_transport(tmp_path: Path) -> SshTransport:
    (tmp_path / "ssh_config").write_text("")
    (tmp_path / "known_hosts").write_text("")
    return SshTransport(
        RunSecrets(), config_file=tmp_path / "ssh_config", known_hosts_file=tmp_path / "known_hosts"
    )


def irtool_limited(limit: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`irtool` as a real process under `prlimit --nofile=SOFT:HARD`."""
    prlimit = shutil.which("prlimit")
    assert prlimit, "prlimit (util-linux) is needed to run irtool under a descriptor limit"
    return subprocess.run(
        [prlimit, f"--nofile={limit}", sys.executable, "-m", "irtool", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "IRTOOL_RESPONDER": "ann"},
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def custody(session: IncidentSession) -> list[dict[str, Any]]:
    """The command.ran records, as the journal holds them now."""
    reopened = IncidentSession.open(session.state.id)
    try:
        return [
            {"host": e.host, **e.data} for e in reopened.journal.events() if e.kind == "command.ran"
        ]
    finally:
        reopened.close_journal()


# -- descriptors ---------------------------------------------------------------------------------


def test_irtool_raises_its_soft_descriptor_limit_to_the_hard_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The command's shell inherits irtool's limits: it says what irtool had.
    _, ours = resource.getrlimit(resource.RLIMIT_NOFILE)
    hard = 4096 if ours == resource.RLIM_INFINITY or os.geteuid() == 0 else min(4096, ours)
    if hard <= 256:
        pytest.skip(f"the hard descriptor limit here is {hard}")
    session = open_collect_incident(
        tmp_path, monkeypatch, {"gw": LOCAL}, command="ulimit -n", timeout=60
    )
    session.close_journal()
    ran = irtool_limited(f"256:{hard}", "incident", "run", session.state.id, "collect")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    (record,) = custody(session)
    store = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR)
    assert store.path(record["stdout"]["sha256"]).read_text() == f"{hard}\n"


def test_two_hundred_hosts_under_256_descriptors_all_succeed_with_parallel_lowered(
    farm: SshdFarm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--parallel 200` under `ulimit -n 256`: before, dozens of hosts failed with "Too many open
    files" (and the journal's spool with them). Ten hosts are sshd's on 127.0.0.1, the rest the
    local transport: cheaper to start, and the costlier in descriptors (three pipes each, eight
    while spawning)."""
    hosts = {f"web{i:03}": ssh_host(farm, i % 2) for i in range(10)}
    hosts |= {f"gw{i:03}": LOCAL for i in range(190)}
    # Each command takes a moment, so that the hosts overlap as in a real triage.
    command = "echo {{ host.name }}; echo warn >&2; sleep 0.2"
    session = open_collect_incident(tmp_path, monkeypatch, hosts, command=command, timeout=60)
    session.close_journal()
    ran = irtool_limited(
        "256:256", "incident", "run", session.state.id, "collect", "--parallel", "200"
    )
    assert ran.returncode == 0, ran.stdout + "\n".join(
        line for line in ran.stderr.splitlines() if "failed" in line
    )
    assert "collect ok on 200 of 200 host(s)" in ran.stdout
    said = [line for line in ran.stderr.splitlines() if "--parallel" in line]
    assert len(said) == 1, ran.stderr
    assert said[0].startswith("irtool: --parallel lowered from 200 to ")
    assert "only 256 file descriptors" in said[0]
    lowered = int(said[0].split(" to ")[1].split(":")[0])
    assert 10 <= lowered < 50
    records = custody(session)
    assert len(records) == 200 and all(r["exit_status"] == 0 for r in records)


@contextmanager
def soft_descriptor_limit(soft: int | None) -> Iterator[int]:
    """This process's soft RLIMIT_NOFILE set to `soft` (None: raised as irtool raises it)
    for the block, then put back."""
    before, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft is None:
        raise_descriptor_limit()
    elif hard == resource.RLIM_INFINITY or soft <= hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        yield resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (before, hard))


def test_the_default_parallel_is_never_lowered_at_the_usual_1024_descriptors() -> None:
    with soft_descriptor_limit(1024) as soft:
        if soft != 1024:
            pytest.skip(f"the hard descriptor limit is below 1024 ({soft})")
        default = fit_parallel(32, [LocalTransport()])
        wide = fit_parallel(200, [LocalTransport()])
    assert (default.allowed, default.lowered) == (32, False)
    # Local hosts cost the most: eight each while spawning, three for the evidence.
    assert wide.lowered and 100 <= wide.allowed < 125, wide.message()
    assert wide.message().startswith(f"--parallel lowered from 200 to {wide.allowed}: ")


def test_a_channel_past_descriptor_1024_is_still_read(farm: SshdFarm, tmp_path: Path) -> None:
    """irtool raises its limit, so its descriptors can pass 1024, where select() gives up."""
    filler: list[int] = []
    with soft_descriptor_limit(None) as soft:
        if soft < 1200:
            pytest.skip(f"the hard descriptor limit ({soft}) does not go past 1024")
        try:
            while not filler or filler[-1] < 1100:
                filler.append(os.open(os.devnull, os.O_RDONLY))
            host = Inventory.model_validate({"hosts": {"web01": ssh_host(farm, 0)}})
            connection = ssh_transport(tmp_path).connect(host.resolve("web01"), Deadline(10))
            try:
                assert run(connection, "echo high")[:2] == (0, b"high\n")
            finally:
                connection.close()
            gateway = Inventory.model_validate({"hosts": {"gw": LOCAL}}).resolve("gw")
            local = LocalTransport().connect(gateway, Deadline(10))
            assert run(local, "echo low", Shell.SH)[:2] == (0, b"low\n")
        finally:
            for fd in filler:
                os.close(fd)


async def test_the_run_screen_says_when_it_lowers_the_hosts_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The terminal UI runs 32 hosts at once; with too few descriptors it runs fewer, and a
    notification says so where stderr would be drawn over."""
    hosts = {f"gw{i:02}": LOCAL for i in range(12)}
    session = open_collect_incident(
        tmp_path, monkeypatch, hosts, command="echo started; sleep 100", timeout=60
    )
    session.close_journal()
    monkeypatch.setenv("IRTOOL_KEYMAP", str(tmp_path / "keymap.yaml"))
    _, open_now = descriptors()
    # Room for the app and its journal, the reserve, and about six local hosts.
    with soft_descriptor_limit(open_now + 24 + RESERVE + 6 * per_host([LocalTransport()])):
        app = IrtoolApp(actor="ann", incident=session.state.id)
        async with app.run_test(size=(120, 30)) as pilot:
            await opened(pilot)
            await pilot.press("r")
            screen = app.screen
            assert isinstance(screen, RunScreen)
            try:
                await wait_for(
                    pilot,
                    lambda: any("--parallel lowered" in n for n in notifications(app)),
                    what="the notification",
                )
                (said,) = [n for n in notifications(app) if "--parallel lowered" in n]
                assert said.startswith("--parallel lowered from 32 to ")
                allowed = int(said.split(" to ")[1].split(":")[0])
                assert 1 <= allowed < len(hosts), said
                feeds = screen.feed.hosts.values()
                await wait_for(
                    pilot,
                    lambda: sum(f.status == "running" for f in feeds) == allowed,
                    what=f"{allowed} hosts running",
                )
                # The others wait their turn: no more than that run at once.
                assert sum(f.status == "queued" for f in feeds) == len(hosts) - allowed
            finally:
                screen.cancel.cancel()
                await wait_for(pilot, lambda: screen.report is not None, what="the cancel")


# -- one watchdog ----------------------------------------------------------------------------------


def test_one_watchdog_thread_serves_every_hosts_deadline(
    farm: SshdFarm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mid-run, with every host's command started: one watchdog thread, no timer per command.
    Before, `threading.Timer` per channel: 461 threads at 200 hosts."""
    count = 12
    hosts = {f"web{i:02}": ssh_host(farm, i % 2) for i in range(count)}
    session = open_collect_incident(
        tmp_path, monkeypatch, hosts, command="echo started; sleep 30", timeout=60
    )
    started: set[str] = set()
    all_started = threading.Event()

    def on_output(host: str, stream: str, data: bytes) -> None:
        started.add(host)
        if len(started) == count:
            all_started.set()

    before = threading.active_count()
    store = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR)
    runner = Runner(
        session,
        {"ssh": ssh_transport(tmp_path)},
        store,
        "ann",
        pool=count,
        on_output=on_output,
    )
    reports: list[RunReport] = []
    worker = threading.Thread(target=lambda: reports.append(runner.run("collect")))
    worker.start()
    try:
        assert all_started.wait(60), f"only {len(started)} of {count} hosts started"
        threads = threading.enumerate()
    finally:
        runner.cancel.cancel()
        worker.join(30)
    watchdogs = [t for t in threads if t.name == "irtool-watchdog"]
    timers = [t for t in threads if isinstance(t, threading.Timer)]
    host_threads = [t for t in threads if t.name.startswith("irtool-host")]
    assert (len(watchdogs), len(timers), len(host_threads)) == (1, 0, count)
    # The rest: paramiko's one thread per connection, the run's own, and the watchdog (if it
    # was not already running before).
    assert len(threads) <= before + 2 * count + 2, sorted(t.name for t in threads)
    assert reports and reports[0].cancelled


def test_the_watchdog_runs_what_is_due_in_order_and_never_what_was_cancelled() -> None:
    watchdog = Watchdog("irtool-watchdog-test")
    fired: list[str] = []
    done = threading.Event()
    now = time.monotonic()
    later = [watchdog.arm(now + 3600, lambda: fired.append("never")) for _ in range(600)]
    for alarm in later:
        alarm.cancel()  # past a few hundred, the cancelled ones are swept from the heap
    assert len(watchdog._heap) < 300
    cancelled = watchdog.arm(now, lambda: fired.append("cancelled"))
    cancelled.cancel()

    def last() -> None:
        fired.append("second")
        done.set()

    second = watchdog.arm(now + 0.02, last)
    first = watchdog.arm(now, lambda: fired.append("first"))
    assert done.wait(10)
    assert fired == ["first", "second"]
    assert (first.fired, second.fired, cancelled.fired, later[0].fired) == (
        True,
        True,
        False,
        False,
    )
    assert [t.name for t in threading.enumerate()].count("irtool-watchdog-test") == 1
