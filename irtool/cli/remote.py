"""`irtool incident run|rollback|fetch`: reaching hosts from the headless CLI.

Progress goes to stderr one line per host change; the result to stdout. The
first Ctrl-C cancels the run cleanly (every host stops, what arrived is kept
and recorded); a second one stops irtool at once.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import FrameType

import click

from irtool.cli.common import actor_option, fail, incident_argument, json_option, who
from irtool.cli.exits import Exit
from irtool.cli.incident import incident, journal_failed, play_scenario, session
from irtool.engine.adhoc import ad_hoc_run
from irtool.engine.applying import put_back_refusal
from irtool.engine.runner import Progress, Runner, RunReport
from irtool.engine.session import IncidentSession, Refused
from irtool.evidence.store import EvidenceStore
from irtool.exercise.transports import transports_for
from irtool.journal import JournalError
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.model.steps import ActionStep, Confirm
from irtool.model.untrusted import visible
from irtool.remote.base import Cancel, HostFailure, Transport
from irtool.remote.fanout import DEFAULT_POOL
from irtool.secrets.redact import RedactingFilter, Redactor
from irtool.secrets.run import RunSecrets

pool_option = click.option(
    "--parallel",
    "pool",
    type=click.IntRange(1, 512),
    default=DEFAULT_POOL,
    show_default=True,
    help="Hosts worked at once.",
)
hosts_option = click.option(
    "--host", "hosts", multiple=True, metavar="HOST", help="Only these hosts (repeatable)."
)


def _prompt_secret(message: str) -> str:
    return getpass.getpass(message)


def _logging(redactor: Redactor) -> None:
    """IRTOOL_LOG=FILE writes a debug log (paramiko's included); secrets never reach it."""
    target = os.environ.get("IRTOOL_LOG")
    if target and not os.path.isdir(os.path.dirname(os.path.abspath(target))):
        fail(f"IRTOOL_LOG={target}: no such directory for the log")
    if not target:
        # paramiko logs a failed handshake with a traceback; the host's failure already says it.
        paramiko_log = logging.getLogger("paramiko")
        paramiko_log.addHandler(logging.NullHandler())
        paramiko_log.propagate = False
        return
    handler = logging.FileHandler(target)
    handler.addFilter(RedactingFilter(redactor))
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)


def _say(text: str) -> None:
    """To stderr, if it is still there: after SIGHUP the terminal is gone, and a write to it
    must not break the run's records."""
    with contextlib.suppress(OSError):
        click.echo(text, err=True)


@contextmanager
def _cancel_on_interrupt(cancel: Cancel) -> Iterator[None]:
    """Ctrl-C, a closed terminal (SIGHUP) and a polite kill (SIGTERM) all cancel the run
    cleanly: every host stops, what arrived is kept and recorded, the run is finished."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        _say(f"irtool: cancelling the run ({signal.Signals(signum).name}; again to stop at once)")
        cancel.cancel()

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _printer(as_json: bool, redactor: Redactor) -> Callable[[Progress], None]:
    lock = threading.Lock()
    last: dict[str, str] = {}

    def show(progress: Progress) -> None:
        if as_json or (progress.status == "running" and last.get(progress.host) == "running"):
            return
        with lock:
            last[progress.host] = progress.status
            detail = f" {redactor.text(progress.detail)}" if progress.detail else ""
            item = f" {progress.item}" if progress.item else ""
            # A detail is a host's words (a banner, a fault): shown, never acted on.
            _say(visible(f"  {progress.host}: {progress.status}{item}{detail}"))

    return show


def _runner(current: IncidentSession, actor: str, pool: int, as_json: bool) -> Runner:
    redactor = Redactor()
    _logging(redactor)
    store = EvidenceStore(incident_dir(current.state.id) / EVIDENCE_DIR)

    def live() -> Mapping[str, Transport]:
        # Imported here: paramiko, pywinrm and requests cost every other command's start-up.
        from irtool.remote.registry import live_transports

        prompt = _prompt_secret if sys.stdin.isatty() else None
        return live_transports(RunSecrets(prompt=prompt, redactor=redactor))

    from irtool.remote.limits import fit_parallel, in_use

    def targets(runner: Runner) -> list[str] | None:
        """The hosts this command reaches (its STEP's, --host's, fetch's HOST); None: any."""
        context = click.get_current_context(silent=True)
        params = context.params if context else {}
        if params.get("host"):  # fetch
            return [str(params["host"])]
        if not params.get("step"):  # an ad-hoc command names its hosts
            return [str(h) for h in params.get("hosts") or ()] or None
        seq = ad_hoc_run(str(params["step"]))
        if seq is not None:
            try:
                return runner.ad_hoc_rollback(seq)[2]
            except Refused:
                return []
        try:
            return list(runner.commands(str(params["step"]), list(params.get("hosts") or ())))
        except Refused:
            return []  # the command refuses too, before reaching any host

    transports = transports_for(current.state, live)
    # As many hosts at once as the descriptors allow: past them, hosts would fail one by one
    # with "Too many open files".
    inventory = current.state.inventory
    names = [str(inventory.resolve(h).transport) for h in inventory.hosts] if inventory else []
    parallel = fit_parallel(pool, in_use(transports, names))
    if parallel.lowered:
        click.echo(f"irtool: {parallel.message()}", err=True)
    runner = Runner(
        current,
        transports,
        store,
        actor,
        redactor=redactor,
        pool=parallel.allowed,
        on_progress=_printer(as_json, redactor),
    )
    # Every credential the command may use, looked up before the first connection: a host
    # that echoes another host's password is then redacted like the rest.
    from irtool.secrets.run import preload

    preload(transports, inventory, targets(runner))
    return runner


def _confirm(
    runner: Runner, step: ActionStep, hosts: list[str] | None, rollback: bool, reason: str
) -> None:
    """Show exactly what will run where, then make the responder type what the step asks for."""
    per_host = runner.rollback_rows(step.id, hosts) if rollback else runner.commands(step.id, hosts)
    guessed = [h for h, rows in per_host.items() if rows[0].assumed]
    if guessed:
        # Which form these hosts get depends on what they are: not shown, not confirmed.
        fail(
            f"which form of '{step.id}' {', '.join(guessed)} get(s) depends on what they are "
            "(OS, PowerShell), and they could not be asked: see why above, then "
            f"irtool incident facts {runner.session.state.id} --host HOST"
        )
    approvals = [] if rollback else runner.check_apply(step.id, reason)
    verb = "ROLL BACK" if rollback else "APPLY"
    said = f"\nrequested and approved by: {', '.join(approvals)}" if approvals else ""
    if rollback and step.rollback_puts_back:
        said += f"\nTHIS ROLLBACK PUTS BACK {step.rollback_puts_back}"
    confirm_typed(
        f"{verb} '{step.id}': {step.title}{said}",
        {
            host: (
                str(rows[0].shell or "no form"),
                f"NOT RUN: {rows[0].unfit}"
                if rows[0].unfit
                else (rows[0].rollback if rollback else rows[0].command) or "",
            )
            for host, rows in per_host.items()
        },
        runner.session,
        ask=f"{verb.lower()} on {len(per_host)} host(s)?" if step.confirm is Confirm.ASK else "",
    )


def confirm_typed(
    title: str, commands: dict[str, tuple[str, str]], current: IncidentSession, ask: str = ""
) -> None:
    """Show exactly what runs where (host -> shell, command), then make the responder type
    the number of hosts (or the one host's name), or answer yes to `ask`."""
    # Commands and what hosts said of themselves (a reason a host is not run) are written
    # out, never acted on by the terminal.
    click.echo(visible(title, lines=True), err=True)
    if current.state.exercise:
        click.echo("EXERCISE: simulated hosts; it is acknowledged, not performed", err=True)
    for host, (shell, command) in commands.items():
        click.echo(visible(f"--- on {host} ({shell}):\n{command}", lines=True), err=True)
    if not sys.stdin.isatty():
        fail("this changes hosts: confirm at a terminal or pass --yes")
    if ask:
        if not click.confirm(ask, err=True):
            fail("not confirmed; nothing was run", Exit.FAILED)
        return
    expected = next(iter(commands)) if len(commands) == 1 else str(len(commands))
    what = "the host's name" if len(commands) == 1 else "the number of hosts"
    typed = click.prompt(f"type {what} to go on", err=True, default="", show_default=False)
    if typed.strip() != expected:
        fail(f"typed '{typed}', expected '{expected}'; nothing was run", Exit.FAILED)


def _finish(report: RunReport, as_json: bool, redactor: Redactor) -> None:
    if as_json:
        click.echo(
            json.dumps(
                {
                    "step": report.step,
                    "purpose": report.purpose,
                    "cancelled": report.cancelled,
                    "completed_step": report.completed_step,
                    "hosts": {
                        h: {
                            "ok": r.ok,
                            "exit_statuses": r.exit_statuses,
                            "failure": redactor.text(str(r.failure)) if r.failure else None,
                        }
                        for h, r in sorted(report.results.items())
                    },
                },
                sort_keys=True,
            )
        )
    else:
        click.echo(visible(report.headline))
        for host, result in sorted(report.failed.items()):
            # why() is what the host said went wrong: shown, never acted on.
            click.echo(visible(f"  FAILED {host}: {redactor.text(result.why())}"))
        outcome = report.outcome(again="run it again (--host for just the failed hosts)")
        if outcome:
            click.echo(visible(outcome))
    if report.pending:
        raise SystemExit(Exit.JOURNAL_UNAVAILABLE)
    if report.failed or report.cancelled:
        raise SystemExit(Exit.FAILED)


@contextmanager
def refusals_said(current: IncidentSession) -> Iterator[None]:
    """A refusal or a journal that will not take a write ends the command with its one line
    and status; the incident's journal is closed whatever happens."""
    try:
        yield
    except Refused as refused:
        fail(str(refused))
    except JournalError as exc:
        journal_failed(exc)
    finally:
        current.close_journal()


def _go(
    incident_id: str,
    step_id: str,
    hosts: tuple[str, ...],
    yes: bool,
    reason: str,
    actor: str | None,
    pool: int,
    as_json: bool,
    rollback: bool,
    put_back: bool = False,
) -> None:
    current = session(incident_id)
    with refusals_said(current):
        runner = _runner(current, who(actor), pool, as_json)
        runner.on_warning = lambda text: _say(f"irtool: WARNING {text}")
        spec = current.state.runbook.step(step_id)
        chosen = list(hosts) or None
        seq = ad_hoc_run(step_id) if rollback else None
        if seq is not None:
            command, shell, applied = runner.ad_hoc_rollback(seq)
            chosen = [h for h in applied if not hosts or h in hosts] or chosen
            if not yes:
                confirm_typed(
                    f"ROLL BACK '{step_id}'", {h: (shell, command) for h in chosen or []}, current
                )
        elif isinstance(spec, ActionStep) and not yes:
            if rollback and spec.rollback_puts_back and not put_back:
                raise Refused(put_back_refusal(spec))  # before anything is typed
            if not rollback:  # a rollback's form is the one applied: nothing to ask
                # First contact before the confirmation: it shows the form each host gets.
                runner.learn_facts(runner.facts_unknown(step_id, chosen))
            if rollback:
                applied = list(current.state.applied.get(step_id, {}))
                chosen = [h for h in applied if not hosts or h in hosts] or chosen
            elif not chosen:  # partly applied: the hosts it is not on yet, as run reaches
                chosen = runner.unapplied_hosts(step_id) or None
            _confirm(runner, spec, chosen, rollback, reason)
        with _cancel_on_interrupt(runner.cancel):
            if seq is not None:
                report = runner.rollback_ad_hoc(seq, chosen, reason)
            elif rollback:
                report = runner.rollback(step_id, chosen, reason, put_back=put_back)
            else:
                report = runner.run(step_id, chosen, reason)
        play_scenario(current, runner.actor)
    with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP): the record is kept
        _finish(report, as_json, runner.redactor)


@incident.command()
@incident_argument
@click.argument("step")
@hosts_option
@click.option("--yes", is_flag=True, help="Apply an action without the interactive confirmation.")
@click.option("--reason", default="", help="Why (an action's request needs one).")
@pool_option
@actor_option
@json_option
def run(
    incident_id: str,
    step: str,
    hosts: tuple[str, ...],
    yes: bool,
    reason: str,
    pool: int,
    actor: str | None,
    as_json: bool,
) -> None:
    """Run a collect step, or apply an action, on every host it targets."""
    _go(incident_id, step, hosts, yes, reason, actor, pool, as_json, rollback=False)


@incident.command()
@incident_argument
@click.argument("step")
@hosts_option
@click.option("--yes", is_flag=True, help="Roll back without the interactive confirmation.")
@click.option("--reason", default="", help="Why it is rolled back.")
@click.option(
    "--put-back",
    is_flag=True,
    help="Second confirmation for an eradication whose rollback restores what the attacker "
    "had (the refusal without it says what).",
)
@pool_option
@actor_option
@json_option
def rollback(
    incident_id: str,
    step: str,
    hosts: tuple[str, ...],
    yes: bool,
    reason: str,
    put_back: bool,
    pool: int,
    actor: str | None,
    as_json: bool,
) -> None:
    """Run the rollback of an applied action (STEP, or ad-hoc-SEQ for an ad-hoc change) on
    the hosts it was applied to."""
    _go(incident_id, step, hosts, yes, reason, actor, pool, as_json, True, put_back)


@incident.command()
@incident_argument
@hosts_option
@click.option("--again", is_flag=True, help="Ask hosts that have said what they are already.")
@actor_option
@json_option
def facts(
    incident_id: str, hosts: tuple[str, ...], again: bool, actor: str | None, as_json: bool
) -> None:
    """Ask the incident's hosts what they are (OS version and build, PowerShell, IIS) and
    record it: which form of each step's command a host gets follows from it. Without
    --again, only hosts that have not said yet (a run asks them on first contact anyway)."""
    current = session(incident_id)
    with refusals_said(current):
        runner = _runner(current, who(actor), DEFAULT_POOL, as_json)
        state = current.state
        if state.inventory is None:
            raise Refused(f"incident {state.id} was opened without an inventory")
        unknown = [h for h in hosts if h not in state.inventory.hosts]
        if unknown:
            raise Refused(f"no host {', '.join(unknown)} in this incident's inventory")
        chosen = list(hosts) or list(state.inventory.hosts)
        if not again:
            chosen = [h for h in chosen if h not in state.facts]
        with _cancel_on_interrupt(runner.cancel):
            failed = runner.learn_facts(chosen, reason="asked" if again else "first contact")
        current.refresh()
        known = current.state.host_facts()
    said = {
        h: {
            "facts": known[h].model_dump(mode="json", exclude_none=True) if h in known else None,
            "summary": known[h].summary() if h in known else None,
            "learned": h in current.state.facts,
            "failed": failed.get(h),
        }
        for h in (list(hosts) or list(state.inventory.hosts))
    }
    if as_json:
        click.echo(json.dumps(said, sort_keys=True))
        return
    for host, entry in said.items():
        if entry["failed"]:
            line = f"could not ask: {entry['failed']}"
        elif entry["summary"] is None:
            line = "not known"
        else:
            source = "said by the host" if entry["learned"] else "stated by the inventory"
            line = f"{entry['summary']} ({source})"
        click.echo(visible(f"{host}: {line}"))
    if failed:
        raise SystemExit(Exit.FAILED)


@incident.command()
@incident_argument
@click.argument("host")
@click.argument("path")
@click.option("--step", help="The step this evidence belongs to.")
@click.option("--timeout", type=click.IntRange(1), default=600, show_default=True)
@actor_option
@json_option
def fetch(
    incident_id: str,
    host: str,
    path: str,
    step: str | None,
    timeout: int,
    actor: str | None,
    as_json: bool,
) -> None:
    """Copy a file (an IIS log, a config) from HOST into the evidence, hash-checked."""
    current = session(incident_id)
    try:
        runner = _runner(current, who(actor), 1, as_json)
        with _cancel_on_interrupt(runner.cancel):
            data = runner.fetch(host, path, timeout, step)
    except Refused as refused:
        fail(visible(str(refused)))
        return
    except HostFailure as failed:  # the host's words (a banner, a hash it claims): made visible
        fail(visible(runner.redactor.text(f"{host}: {failed}")), Exit.FAILED)
        return
    except JournalError as exc:
        journal_failed(exc)
        return
    finally:
        current.close_journal()
    if as_json:
        click.echo(json.dumps(data, sort_keys=True))
    else:
        click.echo(
            visible(f"{host}:{path}: {data['file']['size']} bytes, sha256 {data['file']['sha256']}")
        )
