"""The terminal UI and what hosts are: a rollback that puts back the attacker's foothold is
confirmed a second time, naming it; an action whose form depends on facts not yet known is
not shown (nor confirmed) as a guess; the detail says which form each host gets."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from irtool.engine.runner import Runner
from irtool.engine.session import IncidentSession
from irtool.evidence.store import EvidenceStore
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.model.context import load_context
from irtool.remote.local import LocalTransport
from irtool.tui.app import IrtoolApp
from irtool.tui.screens.confirm import ConfirmAction
from irtool.tui.screens.run import RunScreen
from tests.support.runbooks import runbook
from tests.support.tui import notifications, opened, screen_text, select_step, wait_for

pytestmark = pytest.mark.usefixtures("live_home")

STEPS = """\
- id: disable-task
  type: action
  title: Disable the attacker's task
  shell: sh
  timeout: 20
  targets: [all]
  command: touch MARKERS/disabled
  rollback: rm MARKERS/disabled
  rollback_puts_back: the attacker's scheduled task, running again
- id: block
  type: action
  title: Block inbound web ports
  timeout: 20
  targets: [all]
  variants:
    - id: ps3
      when: {powershell: "3.0", windows: "6.2"}
      command: >-
        New-NetFirewallRule -Name 'irtool-web-{{ incident.id }}' -Direction Inbound
        -LocalPort 80 -Action Block
      rollback: Remove-NetFirewallRule -Name 'irtool-web-{{ incident.id }}'
    - id: cmd
      shell: cmd
      command: >-
        netsh advfirewall firewall add rule name="irtool-web-{{ incident.id }}"
        dir=in action=block protocol=TCP localport=80
      rollback: netsh advfirewall firewall delete rule name="irtool-web-{{ incident.id }}"
"""


def incident(tmp_path: Path) -> str:
    """web01 (this machine, local transport) with the task disabled already; web09, a
    Windows host never contacted, whose form of the block is not known yet."""
    (tmp_path / "facts.yaml").write_text(
        runbook("facts", "Facts", STEPS.replace("MARKERS", str(tmp_path)))
    )
    hosts = {
        "web01": {"address": "127.0.0.1", "transport": "local"},
        "web09": {"address": "192.0.2.9", "transport": "winrm"},
    }
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({"hosts": hosts}))
    context, _ = load_context(tmp_path / "facts.yaml", inventory=tmp_path / "inventory.yaml")
    session = IncidentSession.new(context.runbook, {}, actor="ann", inventory=context.inventory)
    store = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR, create=True)
    Runner(session, {"local": LocalTransport()}, store, "ann").run(
        "disable-task", ["web01"], reason="eradication"
    )
    session.start_early("block", "ann", "the site must go offline now")
    session.close_journal()
    return session.state.id


async def test_a_rollback_that_puts_back_the_attackers_foothold_is_confirmed_twice(
    tmp_path: Path,
) -> None:
    app = IrtoolApp(actor="ann", incident=incident(tmp_path))
    async with app.run_test(size=(110, 34)) as pilot:
        await opened(pilot)
        await select_step(pilot, "disable-task")
        await pilot.press("b")
        assert isinstance(app.screen, ConfirmAction), notifications(app)
        text = screen_text(app)
        assert "This rollback PUTS BACK the attacker's scheduled task, running again." in text
        confirm = app.screen
        confirm.query_one("#assent").value = "web01"  # type: ignore[attr-defined]
        confirm.query_one("#reason").value = "the task was the backup job"  # type: ignore[attr-defined]
        confirm.query_one("#put-back").value = "yes"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        assert "type 'put back' to go on" in screen_text(app)
        assert (tmp_path / "disabled").exists()
        confirm.query_one("#put-back").value = "put back"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen), what="the rollback")
        run = app.screen
        await wait_for(pilot, lambda: run.report is not None, what="its end")  # type: ignore[attr-defined]
        assert not (tmp_path / "disabled").exists()


async def test_an_action_whose_form_is_not_known_yet_is_not_confirmed_as_a_guess(
    tmp_path: Path,
) -> None:
    app = IrtoolApp(actor="ann", incident=incident(tmp_path))
    async with app.run_test(size=(200, 50)) as pilot:
        await opened(pilot)
        await select_step(pilot, "block")
        await wait_for(
            pilot, lambda: "on web09 (powershell" in screen_text(app), what="the block's detail"
        )
        detail = screen_text(app)
        assert "on web01 (cmd, variant cmd):" not in detail  # web01 said it is Linux
        assert "not run: no form of this step fits" in detail
        assert "on web09 (powershell, variant ps3) (assumed: its facts are not known" in detail
        await pilot.press("r")
        await wait_for(
            pilot,
            lambda: any("not known yet" in n for n in notifications(app)),
            what="the refusal",
        )
        assert not isinstance(app.screen, ConfirmAction)
        said = next(n for n in notifications(app) if "not known yet" in n)
        assert "irtool incident facts" in said and "web09" in said
