"""The SSH transport against real OpenSSH sshd instances on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import keyring
import paramiko
import pytest

from irtool.model.inventory import Inventory, ResolvedHost
from irtool.model.steps import Shell
from irtool.remote.base import Cancel, Deadline, Failure, HostFailure
from irtool.remote.fanout import fan_out
from irtool.remote.ssh import KnownHosts, SshTransport, preferred_key_types
from irtool.secrets.run import RunSecrets
from tests.support.keyring_backend import FileKeyring
from tests.support.remote import refused, run
from tests.support.sshd import BlackHole, SshdFarm, closed_port, rotate_host_key

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdFarm]:
    with SshdFarm(tmp_path_factory.mktemp("sshd"), count=3) as started:
        yield started


@pytest.fixture
def transport(tmp_path: Path) -> SshTransport:
    # An empty ssh config and known_hosts: nothing of the tester's own ~/.ssh leaks in.
    (tmp_path / "config").write_text("")
    (tmp_path / "known_hosts").write_text("")
    return SshTransport(
        RunSecrets(), config_file=tmp_path / "config", known_hosts_file=tmp_path / "known_hosts"
    )


def host(farm: SshdFarm, index: int = 0, **settings: object) -> ResolvedHost:
    target = farm[index]
    fields: dict[str, object] = {
        "address": target.address,
        "port": target.port,
        "transport": "ssh",
        "user": farm.user,
        "auth": "key",
        "identity_file": str(farm.client_key),
        "host_key": target.fingerprint,
        "connect_timeout": 5,
    }
    fields.update(settings)
    fields = {k: v for k, v in fields.items() if v is not None}
    inventory = Inventory.model_validate({"hosts": {target.name: fields}})
    return inventory.resolve(target.name)


def test_a_command_runs_and_both_streams_and_the_exit_status_come_back(
    farm: SshdFarm, transport: SshTransport
) -> None:
    connection = transport.connect(host(farm), Deadline(10))
    try:
        status, out, err = run(connection, "echo 'it''s here'; echo warn >&2; exit 7")
        assert (status, out, err) == (7, b"its here\n", b"warn\n")
        # One connection serves every command of a step.
        assert run(connection, 'printf %s "$0" | head -c 2')[0] == 0
    finally:
        connection.close()
    assert connection.identity == f"ssh-ed25519 {farm[0].fingerprint}"


def test_ten_mib_on_stdout_and_stderr_at_once_arrive_whole(
    farm: SshdFarm, transport: SshTransport
) -> None:
    command = "yes stdout-line | head -c 10485760 & yes stderr-line | head -c 10485760 >&2; wait"
    digests = {"stdout": hashlib.sha256(), "stderr": hashlib.sha256()}
    sizes = {"stdout": 0, "stderr": 0}

    def keep(stream: str, data: bytes) -> None:
        digests[stream].update(data)
        sizes[stream] += len(data)

    connection = transport.connect(host(farm), Deadline(10))
    try:
        assert connection.run(command, Shell.SH, Deadline(60), keep) == 0
    finally:
        connection.close()
    for stream in ("stdout", "stderr"):
        expected = (f"{stream}-line\n".encode() * (10 * MiB // 12 + 1))[: 10 * MiB]
        assert sizes[stream] == 10 * MiB
        assert digests[stream].hexdigest() == hashlib.sha256(expected).hexdigest()


def test_an_unknown_host_key_is_refused_with_its_fingerprint_and_how_to_pin_it(
    farm: SshdFarm, transport: SshTransport
) -> None:
    failure = refused(transport, host(farm, host_key=None))
    assert failure.kind is Failure.HOST_KEY
    assert "unknown host key" in failure.reason
    assert f'host_key: "{farm[0].fingerprint}"' in failure.reason


def test_a_host_in_known_hosts_is_accepted(
    farm: SshdFarm, transport: SshTransport, tmp_path: Path
) -> None:
    farm.known_hosts(transport.known_hosts_file)
    connection = transport.connect(host(farm, 1, host_key=None), Deadline(10))
    connection.close()
    assert connection.identity == f"ssh-ed25519 {farm[1].fingerprint}"


def test_a_host_key_other_than_the_pinned_one_is_refused(
    farm: SshdFarm, transport: SshTransport
) -> None:
    # Host 0 answers where the inventory pinned host 1's key: what a man in the middle looks like.
    failure = refused(transport, host(farm, 0, host_key=farm[1].fingerprint))
    assert failure.kind is Failure.HOST_KEY
    assert "CHANGED" in failure.reason
    assert farm[0].fingerprint in failure.reason and farm[1].fingerprint in failure.reason
    full_key = refused(transport, host(farm, 0, host_key=farm[1].host_key))
    assert full_key.kind is Failure.HOST_KEY


def test_a_changed_host_key_is_refused_against_known_hosts(
    tmp_path: Path, transport: SshTransport
) -> None:
    with SshdFarm(tmp_path / "rotating") as own:
        own.known_hosts(transport.known_hosts_file)
        transport.connect(host(own, host_key=None), Deadline(10)).close()
        old = own[0].fingerprint
        rotate_host_key(own[0])
        failure = refused(transport, host(own, host_key=None))
    assert failure.kind is Failure.HOST_KEY
    assert "CHANGED" in failure.reason and old in failure.reason


def test_a_key_the_host_does_not_know_fails_authentication(
    farm: SshdFarm, transport: SshTransport, tmp_path: Path
) -> None:
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    failure = refused(transport, host(farm, identity_file=str(stranger)))
    assert failure.kind is Failure.AUTH
    assert str(stranger) in failure.reason


def test_a_closed_port_fails_at_once_as_unreachable(
    farm: SshdFarm, transport: SshTransport
) -> None:
    began = time.monotonic()
    failure = refused(transport, host(farm, port=closed_port()))
    assert failure.kind is Failure.UNREACHABLE
    assert "refused" in failure.reason.lower()
    assert time.monotonic() - began < 2


def test_a_host_that_never_sends_its_banner_fails_within_its_deadline(
    farm: SshdFarm, transport: SshTransport
) -> None:
    with BlackHole() as hole:
        began = time.monotonic()
        failure = refused(transport, host(farm, port=hole.port), seconds=1.5)
        elapsed = time.monotonic() - began
    assert failure.kind in (Failure.TIMEOUT, Failure.UNREACHABLE)
    assert elapsed < 3


def test_a_command_that_hangs_fails_at_its_deadline(
    farm: SshdFarm, transport: SshTransport
) -> None:
    marker = f"{time.monotonic_ns() % 100000}.5"
    connection = transport.connect(host(farm), Deadline(10))
    began = time.monotonic()
    try:
        with pytest.raises(HostFailure) as failed:
            run(connection, f"sleep {marker}", seconds=1.5)
    finally:
        connection.close()
    assert failed.value.kind is Failure.TIMEOUT
    assert time.monotonic() - began < 3


def test_a_passphrase_protected_key_opens_with_the_passphrase_from_the_keyring(
    farm: SshdFarm, transport: SshTransport, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IRTOOL_TEST_KEYRING", str(tmp_path / "keyring.json"))
    previous = keyring.get_keyring()
    keyring.set_keyring(FileKeyring())
    try:
        keyring.set_password("irtool", "gw-key", farm.passphrase)
        target = host(farm, identity_file=str(farm.encrypted_client_key), credential="gw-key")
        transport.connect(target, Deadline(10)).close()
        keyring.set_password("irtool", "gw-key", "not the passphrase")
        fresh = SshTransport(
            RunSecrets(),
            config_file=transport.config_file,
            known_hosts_file=transport.known_hosts_file,
        )
        failure = refused(fresh, target)
    finally:
        keyring.set_keyring(previous)
    assert failure.kind is Failure.CREDENTIAL


def test_ssh_config_supplies_hostname_port_user_identity_and_proxyjump(
    farm: SshdFarm, tmp_path: Path
) -> None:
    known = farm.known_hosts(tmp_path / "known_hosts")
    config = farm.ssh_config(tmp_path / "config")
    # h3 only through h1: the inventory names h3 and nothing else.
    config.write_text(
        config.read_text() + f"\nHost via-jump\n    HostName {farm[2].address}\n"
        f"    Port {farm[2].port}\n    User {farm.user}\n"
        f'    IdentityFile "{farm.client_key}"\n    ProxyJump h1\n'
    )
    transport = SshTransport(RunSecrets(), config_file=config, known_hosts_file=known)
    bare = Inventory.model_validate(
        {
            "hosts": {
                "web": {"address": "h2", "transport": "ssh"},
                "far": {"address": "via-jump", "transport": "ssh"},
            }
        }
    )
    direct = transport.connect(bare.resolve("web"), Deadline(10))
    jumped = transport.connect(bare.resolve("far"), Deadline(10))
    try:
        assert run(direct, "echo ok")[:2] == (0, b"ok\n")
        assert run(jumped, "echo far")[:2] == (0, b"far\n")
    finally:
        direct.close()
        jumped.close()
    assert direct.identity == f"ssh-ed25519 {farm[1].fingerprint}"
    assert jumped.identity == f"ssh-ed25519 {farm[2].fingerprint}"


def test_fan_out_finishes_good_hosts_while_bad_ones_fail_alone(
    farm: SshdFarm, transport: SshTransport
) -> None:
    with BlackHole() as hole:
        targets = [
            host(farm, 0),
            host(farm, 1),
            host(farm, port=closed_port()),
            host(farm, port=hole.port),
        ]
        names = ["good-1", "good-2", "closed", "hung"]

        def work(index: int) -> int:
            connection = transport.connect(targets[index], Deadline(2))
            try:
                return run(connection, "echo hi")[0]
            finally:
                connection.close()

        began = time.monotonic()
        outcomes = {names[o.target]: o for o in fan_out(range(4), work, pool=4)}
        elapsed = time.monotonic() - began
    assert outcomes["good-1"].result == 0 and outcomes["good-2"].result == 0
    assert outcomes["closed"].failure and outcomes["closed"].failure.kind is Failure.UNREACHABLE
    assert outcomes["hung"].failure is not None
    assert elapsed < 4


def test_cancelling_a_run_stops_every_host_promptly(
    farm: SshdFarm, transport: SshTransport
) -> None:
    cancel = Cancel()
    running = threading.Semaphore(0)

    def work(index: int) -> int:
        connection = transport.connect(host(farm, index), Deadline(30, cancel))
        try:
            return connection.run(
                "echo started; sleep 29.25",
                Shell.SH,
                Deadline(30, cancel),
                lambda stream, data: running.release(),
            )
        finally:
            connection.close()

    outcomes: list[object] = []
    runner = threading.Thread(
        target=lambda: outcomes.extend(fan_out(range(3), work, pool=3, cancel=cancel))
    )
    runner.start()
    for _ in range(3):
        assert running.acquire(timeout=15)
    began = time.monotonic()
    cancel.cancel()
    runner.join(timeout=10)
    failures = [o.failure for o in outcomes]  # type: ignore[attr-defined]
    assert len(failures) == 3
    assert [f.kind if f else None for f in failures] == [Failure.CANCELLED] * 3
    assert time.monotonic() - began < 3


def test_a_file_is_fetched_over_sftp_and_checked_against_the_hosts_hash(
    farm: SshdFarm, transport: SshTransport, tmp_path: Path
) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(os.urandom(3 * MiB + 7))
    received: list[bytes] = []
    connection = transport.connect(host(farm), Deadline(10))
    try:
        fetched = connection.fetch(str(log), Deadline(30), received.append)
        with pytest.raises(HostFailure) as missing:
            connection.fetch(str(tmp_path / "nope.log"), Deadline(10), received.append)
    finally:
        connection.close()
    data = b"".join(received)
    assert data == log.read_bytes()
    assert (fetched.size, fetched.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert "nope.log" in missing.value.reason


def test_known_hosts_lines_paramiko_cannot_read_do_not_break_other_hosts(
    farm: SshdFarm, transport: SshTransport
) -> None:
    # An SSH CA line and a hashed entry, as estates with a CA and HashKnownHosts have.
    hashed = subprocess.run(
        ["ssh-keygen", "-H", "-f", "-"],
        input=farm[0].known_hosts_line + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    transport.known_hosts_file.write_text(
        "@cert-authority *.corp.example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJunk\n"
        "# a comment\n" + (hashed.stdout if hashed.returncode == 0 else farm[0].known_hosts_line)
    )
    connection = transport.connect(host(farm, host_key=None), Deadline(10))
    connection.close()
    assert connection.identity == f"ssh-ed25519 {farm[0].fingerprint}"


def test_a_revoked_host_key_is_refused_even_when_pinned(
    farm: SshdFarm, transport: SshTransport
) -> None:
    transport.known_hosts_file.write_text(f"@revoked * {farm[0].host_key}\n")
    failure = refused(transport, host(farm))
    assert failure.kind is Failure.HOST_KEY and "REVOKED" in failure.reason


def test_the_key_type_held_is_asked_for_first() -> None:
    offered = ["ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]
    none = KnownHosts(paramiko.HostKeys(), set())
    pinned = preferred_key_types("ecdsa-sha2-nistp256 AAAA", none, "h", offered)
    assert pinned[0] == "ecdsa-sha2-nistp256" and sorted(pinned) == sorted(offered)
    assert preferred_key_types("ssh-rsa AAAA", none, "h", offered)[:3] == offered[2:]
    assert preferred_key_types("SHA256:abc", none, "h", offered) == offered
