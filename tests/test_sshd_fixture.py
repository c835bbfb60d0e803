"""The sshd test fixture itself, checked with the system ssh client and plain paramiko."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from tests.support.sshd import (
    BlackHole,
    SshdFarm,
    SshHost,
    closed_port,
    rotate_host_key,
)


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[SshdFarm]:
    with SshdFarm(tmp_path / "sshd", count=2) as farm:
        yield farm


def ssh(
    farm: SshdFarm, host: SshHost, known_hosts: Path, command: str
) -> subprocess.CompletedProcess[str]:
    """The system client, isolated from the user's ~/.ssh config, agent and known hosts."""
    return subprocess.run(
        [
            "ssh",
            "-F",
            "none",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            f"UserKnownHostsFile={known_hosts}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "ConnectTimeout=10",
            "-i",
            str(farm.client_key),
            "-p",
            str(host.port),
            f"{farm.user}@{host.address}",
            command,
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=30,
    )


def test_ssh_runs_a_command_and_returns_its_exit_status(farm: SshdFarm, tmp_path: Path) -> None:
    known_hosts = farm.known_hosts(tmp_path / "known_hosts")
    result = ssh(farm, farm.hosts[0], known_hosts, "echo ok; exit 3")
    assert result.returncode == 3, result.stderr + farm.hosts[0].log_text()
    assert result.stdout == "ok\n"


def test_two_hosts_have_their_own_keys_and_both_answer(farm: SshdFarm, tmp_path: Path) -> None:
    first, second = farm.hosts
    assert first.port != second.port
    assert first.host_key != second.host_key
    assert first.fingerprint != second.fingerprint
    assert first.fingerprint.startswith("SHA256:")
    assert first.host_key.startswith("ssh-ed25519 AAAA")
    known_hosts = farm.known_hosts(tmp_path / "known_hosts")
    config = farm.ssh_config(tmp_path / "ssh_config", known_hosts=known_hosts)
    for host in farm.hosts:
        result = subprocess.run(
            ["ssh", "-F", str(config), "-o", "BatchMode=yes", host.name, f"echo {host.name}"],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=30,
        )
        assert (result.returncode, result.stdout) == (0, f"{host.name}\n"), result.stderr


def test_paramiko_with_encrypted_key_exec_and_sftp(farm: SshdFarm, tmp_path: Path) -> None:
    host = farm.hosts[1]
    client = paramiko.SSHClient()
    client.load_host_keys(str(farm.known_hosts(tmp_path / "known_hosts")))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(
            host.address,
            port=host.port,
            username=farm.user,
            key_filename=str(farm.encrypted_client_key),
            passphrase=farm.passphrase,
            allow_agent=False,
            look_for_keys=False,
            timeout=10,
        )
        _, stdout, _ = client.exec_command("printf '%s' hello; exit 7")
        assert stdout.read() == b"hello"
        assert stdout.channel.recv_exit_status() == 7
        with client.open_sftp() as sftp:
            target = tmp_path / "uploaded.txt"
            with sftp.open(str(target), "w") as remote:
                remote.write(b"via sftp")
        assert target.read_bytes() == b"via sftp"
    finally:
        client.close()


def test_closed_port_refuses() -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", closed_port()), timeout=5).close()


def test_black_hole_accepts_but_never_sends_a_banner() -> None:
    with BlackHole() as hole, socket.create_connection(("127.0.0.1", hole.port), timeout=5) as sock:
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(1)


def test_rotated_host_key_is_refused_by_strict_checking(farm: SshdFarm, tmp_path: Path) -> None:
    host = farm.hosts[0]
    old_known_hosts = farm.known_hosts(tmp_path / "old_known_hosts")
    old_port, old_fingerprint = host.port, host.fingerprint
    rotate_host_key(host)
    assert (host.port, host.process.poll()) == (old_port, None)
    assert host.fingerprint != old_fingerprint

    refused = ssh(farm, host, old_known_hosts, "echo should-not-run")
    assert refused.returncode == 255
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in refused.stderr
    assert "should-not-run" not in refused.stdout

    accepted = ssh(farm, host, farm.known_hosts(tmp_path / "new_known_hosts"), "echo ok")
    assert (accepted.returncode, accepted.stdout) == (0, "ok\n"), accepted.stderr


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_closing_the_farm_ends_running_commands(tmp_path: Path) -> None:
    client = paramiko.SSHClient()
    try:
        with SshdFarm(tmp_path / "sshd") as farm:
            host = farm.hosts[0]
            client.load_host_keys(str(farm.known_hosts(tmp_path / "known_hosts")))
            client.connect(
                host.address,
                port=host.port,
                username=farm.user,
                key_filename=str(farm.client_key),
                allow_agent=False,
                look_for_keys=False,
                timeout=10,
            )
            _, stdout, _ = client.exec_command("echo $$; exec sleep 300")
            pid = int(stdout.readline())
            assert _running(pid)
        deadline = time.monotonic() + 5
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not _running(pid)
    finally:
        client.close()


def _running(pid: int) -> bool:
    """Alive and not a zombie (a container's pid 1 may never reap orphans)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"
