"""The kinds of step a runbook is made of: a union discriminated on `type`."""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, Field, PositiveInt, model_validator

from irtool.model.base import Duration, ItemId, Model, RoleId, StepId
from irtool.model.facts import When
from irtool.model.records import RecordSpecs

_SELECTOR = re.compile(r"all|(?:group|host|tag):[A-Za-z0-9][A-Za-z0-9_.-]*")


def _selector(value: str) -> str:
    if not _SELECTOR.fullmatch(value):
        raise ValueError(f"'{value}' is not a target: write all, group:NAME, host:NAME or tag:NAME")
    return value


Selector = Annotated[str, AfterValidator(_selector)]


class Shell(StrEnum):
    """The shell a command is written for; it decides how substituted values are quoted."""

    POWERSHELL = "powershell"
    SH = "sh"
    CMD = "cmd"  # cmd.exe, for a Windows host without PowerShell: one command per line


class Confirm(StrEnum):
    """How hard a responder must confirm before a state-changing command runs."""

    ASK = "ask"  # yes or no
    TYPE_COUNT = "type-count"  # type the number of hosts (or the host's name)


class StepBase(Model):
    type: str
    id: StepId
    title: str
    owner: RoleId | None = None
    instructions: str = ""
    next: StepId | None = Field(
        default=None, description="Step to go to after this one, instead of the following step."
    )
    strict: bool = Field(
        default=False,
        description="Only once the steps ahead of it are done: it cannot be started early.",
    )


class ManualStep(StepBase):
    type: Literal["manual"]
    checklist: list[str] = []


class NotifyStep(StepBase):
    type: Literal["notify"]
    roles: list[RoleId] = Field(min_length=1)
    message: str = ""


class DecisionOption(Model):
    id: ItemId
    label: str
    next: StepId | None = Field(
        default=None, description="Step this answer leads to; absent: the following step."
    )


class DecisionStep(StepBase):
    type: Literal["decision"]
    question: str
    options: list[DecisionOption] = Field(min_length=2)

    @model_validator(mode="after")
    def _routes_live_on_options(self) -> Self:
        if self.next is not None:
            raise ValueError("a decision routes through its options' 'next', not its own")
        return self


class CommandStep(StepBase):
    targets: list[Selector] = Field(min_length=1)
    shell: Shell = Shell.POWERSHELL
    timeout: PositiveInt = Field(default=300, description="Seconds each host may take.")


class Variant(Model):
    """One form of a step's command, for the hosts whose facts fit `when`."""

    id: ItemId
    when: When | None = Field(
        default=None, description="Minimums the host's facts must meet; absent: any host."
    )
    shell: Shell | None = Field(default=None, description="Absent: the step's shell.")
    command: str
    rollback: str | None = Field(default=None, description="Action steps: this form's way back.")


def _variants_differ(variants: list[Variant] | None) -> None:
    ids = [v.id for v in variants or []]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ValueError(f"variant id '{twice[0]}' is used twice")


def _read_only_forms(model: Any, keys: tuple[str, str, str], what: str) -> None:
    """A collector (or collect step) has exactly one of `keys`; its variants differ by id
    and, read-only, have no rollback."""
    if sum(getattr(model, k) is not None for k in keys) != 1:
        raise ValueError(f"{what} has one of '{keys[0]}', '{keys[1]}' or '{keys[2]}'")
    _variants_differ(model.variants)
    if any(v.rollback for v in model.variants or []):
        raise ValueError(f"{what} is read-only: its variants have no 'rollback'")


class FetchSpec(Model):
    """Files to bring back from the host as evidence, each hashed there and here."""

    paths: list[str] = Field(
        min_length=1,
        description="Globs on the host (`*`, `?`, `**` for any depth); %VAR% expands on Windows.",
    )
    max_size: PositiveInt = Field(
        default=100_000_000, description="Bytes per file; a bigger file is listed, not fetched."
    )
    max_files: PositiveInt = Field(
        default=1000, description="Files per host; the rest are listed, not fetched."
    )
    modified_within: Duration | None = Field(
        default=None, description="Only files modified within this of the collection."
    )
    reason: str = Field(min_length=1, description="Why these files: it goes in their custody.")

    def describe(self) -> str:
        limits = [f"at most {self.max_files} files", f"{self.max_size} bytes each"]
        if self.modified_within is not None:
            limits.append(f"modified within {_span(self.modified_within)}")
        return f"fetch {'; '.join(self.paths)} ({', '.join(limits)})"


def _span(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    text = "".join(f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "m")) if n)
    return text or f"{seconds}s"


class Collector(Model):
    id: ItemId
    title: str
    command: str | None = None
    variants: list[Variant] | None = Field(default=None, min_length=1)
    fetch: FetchSpec | None = None
    records: RecordSpecs | None = Field(
        default=None,
        description="Its output is structured records: how to read them (a list when it holds "
        "several kinds).",
    )

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        _read_only_forms(self, ("command", "variants", "fetch"), "a collector")
        return self


class CollectStep(CommandStep):
    """Read-only commands; their output is kept as evidence."""

    type: Literal["collect"]
    command: str | None = None
    variants: list[Variant] | None = Field(default=None, min_length=1)
    commands: list[Collector] | None = Field(default=None, min_length=1)
    records: RecordSpecs | None = Field(
        default=None,
        description="With command or variants: its output is structured records (how to read "
        "them).",
    )

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        _read_only_forms(self, ("command", "variants", "commands"), "a collect step")
        if self.records is not None and self.commands is not None:
            raise ValueError("records: give it on each of the step's commands")
        return self

    def collectors(self) -> list[Collector]:
        if self.commands is not None:
            return list(self.commands)
        return [
            Collector(
                id=self.id,
                title=self.title,
                command=self.command,
                variants=self.variants,
                records=self.records,
            )
        ]


class ActionStep(CommandStep):
    """A state-changing command (containment) with its way back."""

    type: Literal["action"]
    command: str | None = None
    rollback: str | None = None
    variants: list[Variant] | None = Field(default=None, min_length=1)
    irreversible: str | None = Field(
        default=None, description="Why this action cannot be rolled back."
    )
    rollback_puts_back: str | None = Field(
        default=None,
        description="What a rollback restores that the attacker had (eradication): a rollback "
        "then needs a second, explicit confirmation naming it.",
    )
    confirm: Confirm = Confirm.TYPE_COUNT
    approvals: Literal[1, 2] = Field(default=1, description="2: a second responder must approve.")

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        if (self.command is None) == (self.variants is None):
            raise ValueError("an action step has either 'command' or 'variants', not both")
        if self.variants is not None and self.rollback is not None:
            raise ValueError("with 'variants', each variant carries its own 'rollback'")
        _variants_differ(self.variants)
        return self

    def forms(self) -> list[Variant]:
        """Its command forms: the variants, or the one command as a variant for any host."""
        if self.variants is not None:
            return list(self.variants)
        assert self.command is not None
        return [Variant(id=self.id, command=self.command, rollback=self.rollback)]

    @property
    def reversible(self) -> bool:
        return any(v.rollback for v in self.forms())


class CredentialKind(StrEnum):
    DEPLOYMENT = "deployment"
    DATABASE = "database"
    FTP = "ftp"
    SFTP = "sftp"
    RDP = "rdp"
    SERVICE_ACCOUNT = "service-account"
    APP_POOL = "app-pool"
    MACHINE_KEY = "machine-key"
    OTHER = "other"


class RotationMethod(StrEnum):
    ATTEST = "attest"  # a person rotates it and records that they did
    AUTOMATED = "automated"  # a command rotates it on the targets


class Rotation(Model):
    id: ItemId
    kind: CredentialKind
    title: str
    method: RotationMethod = RotationMethod.ATTEST
    owner: RoleId | None = None
    instructions: str = ""
    targets: list[Selector] | None = None
    shell: Shell = Shell.POWERSHELL
    command: str | None = None

    @model_validator(mode="after")
    def _automated_has_command(self) -> Self:
        if self.method is RotationMethod.AUTOMATED and (not self.command or not self.targets):
            raise ValueError("an automated rotation needs 'command' and 'targets'")
        if self.method is RotationMethod.ATTEST and self.command:
            raise ValueError("an attested rotation has no 'command': set method: automated")
        return self


class RotateStep(StepBase):
    """Credential rotation: forward-only, recorded, never the secret itself."""

    type: Literal["rotate"]
    items: list[Rotation] = Field(min_length=1)


class AgendaTopic(Model):
    id: ItemId
    title: str
    prompt: str = ""


STANDING_AGENDA = [
    AgendaTopic(
        id="threat",
        title="Threat and vulnerabilities identified",
        prompt="What is attacking us, through which weakness, on which hosts?",
    ),
    AgendaTopic(
        id="strategy",
        title="Tactical strategy",
        prompt="How do we block or mitigate the damage now, and who does what?",
    ),
    AgendaTopic(
        id="reconvene",
        title="Time to reconvene",
        prompt="When does the team meet again, and what must be known by then?",
    ),
    AgendaTopic(id="postmortem", title="Post-mortem", prompt="What must the post-mortem look at?"),
]


class AgendaStep(StepBase):
    """A meeting of the team on the standing agenda."""

    type: Literal["agenda"]
    topics: list[AgendaTopic] = Field(default_factory=lambda: list(STANDING_AGENDA))
    reconvene_every: Duration = timedelta(hours=1)


NIST_LESSONS_LEARNED = [
    "Exactly what happened, and at what times?",
    "How well did staff and management perform? Were the documented procedures followed, "
    "and were they adequate?",
    "What information was needed sooner?",
    "Were any steps or actions taken that might have inhibited the recovery?",
    "What would the staff and management do differently the next time a similar incident occurs?",
    "What corrective actions can prevent similar incidents in the future?",
    "What additional tools or resources are needed to detect, analyze, and mitigate "
    "future incidents?",
]


class AnalyzeStep(StepBase):
    """Read what was collected by named collect steps or collectors: hunts and Sigma rules over
    the web logs and Windows event logs they kept; their structured records stacked across the
    hosts (what is rare) and compared with each host's known-good baseline; the web roots they
    listed compared with the known-good manifest, and YARA over the files that differ. Each hit
    is a finding; the step is done once a responder has read them.

    With `baseline: capture` (a host's admission, when it is known to be good), the step reads
    the same records and keeps them as each host's baseline instead."""

    type: Literal["analyze"]
    sources: list[str] = Field(
        min_length=1,
        description="Whose evidence is read: a collect step (STEP) or one collector of it "
        "(STEP/COLLECTOR).",
    )
    hunts: list[ItemId] | None = Field(
        default=None, description="The hunts to run (ids); all of them when not given."
    )
    rules: list[str] | None = Field(
        default=None,
        description="The Sigma rules to run (ids); every shipped rule when not given, none "
        "when empty.",
    )
    rare_below: PositiveInt = Field(
        default=2,
        description="A record (a module, a service, a task...) found on fewer hosts than this is "
        "a finding to review; stacking needs 3 hosts or more.",
    )
    baseline: Literal["compare", "capture"] = Field(
        default="compare",
        description="compare: each host's records against its baseline; capture: keep them as "
        "its baseline (a host admitted as known good).",
    )
    checklist: list[str] = []

    def reads(self, step: str, collector: str | None) -> bool:
        """Whether evidence kept by this collect step (and collector) is one of its sources."""
        return step in self.sources or (
            collector is not None and f"{step}/{collector}" in self.sources
        )


class PostmortemStep(StepBase):
    """Lessons learned: the answers go into the post-mortem report."""

    type: Literal["postmortem"]
    questions: list[str] = Field(default_factory=lambda: list(NIST_LESSONS_LEARNED))

    def question(self, key: str) -> str | None:
        """A question by its number (1, 2, ...) as the screens show it, or by its text."""
        number = key.strip()
        if number.isascii() and number.isdecimal() and 1 <= int(number) <= len(self.questions):
            return self.questions[int(number) - 1]
        return key if key in self.questions else None

    @model_validator(mode="after")
    def _questions_differ(self) -> Self:
        twice = sorted({q for q in self.questions if self.questions.count(q) > 1})
        if twice:
            raise ValueError(f"question asked twice: {twice[0]!r}")
        return self


Step = Annotated[
    ManualStep
    | NotifyStep
    | DecisionStep
    | CollectStep
    | ActionStep
    | RotateStep
    | AgendaStep
    | AnalyzeStep
    | PostmortemStep,
    Field(discriminator="type"),
]

STEP_KINDS = (
    "manual",
    "notify",
    "decision",
    "collect",
    "action",
    "rotate",
    "agenda",
    "analyze",
    "postmortem",
)


def command_templates(step: Any) -> list[tuple[tuple[str | int, ...], str, Shell]]:
    """Every command template a step holds, with its path inside the step and its shell."""
    found: list[tuple[tuple[str | int, ...], str, Shell]] = []

    def variants(at: tuple[str | int, ...], forms: list[Variant] | None, shell: Shell) -> None:
        for i, form in enumerate(forms or []):
            found.append(((*at, "variants", i, "command"), form.command, form.shell or shell))
            if form.rollback is not None:
                found.append(((*at, "variants", i, "rollback"), form.rollback, form.shell or shell))

    if isinstance(step, CollectStep):
        if step.command is not None:
            found.append((("command",), step.command, step.shell))
        variants((), step.variants, step.shell)
        for i, collector in enumerate(step.commands or []):
            if collector.command is not None:
                found.append((("commands", i, "command"), collector.command, step.shell))
            variants(("commands", i), collector.variants, step.shell)
    elif isinstance(step, ActionStep):
        if step.command is not None:
            found.append((("command",), step.command, step.shell))
        if step.rollback is not None:
            found.append((("rollback",), step.rollback, step.shell))
        variants((), step.variants, step.shell)
    elif isinstance(step, RotateStep):
        for i, item in enumerate(step.items):
            if item.command is not None:
                found.append((("items", i, "command"), item.command, item.shell))
    return found


def variant_sources(
    step: Any,
) -> list[tuple[tuple[str | int, ...], Variant | None, str, Shell]]:
    """Every command template with the variant it belongs to (None: a step's one command)."""
    out: list[tuple[tuple[str | int, ...], Variant | None, str, Shell]] = []
    forms: dict[tuple[str | int, ...], Variant] = {}
    if isinstance(step, CollectStep):
        for i, v in enumerate(step.variants or []):
            forms[("variants", i)] = v
        for c, collector in enumerate(step.commands or []):
            for i, v in enumerate(collector.variants or []):
                forms[("commands", c, "variants", i)] = v
    elif isinstance(step, ActionStep):
        for i, v in enumerate(step.variants or []):
            forms[("variants", i)] = v
    for path, source, shell in command_templates(step):
        out.append((path, forms.get(path[:-1]), source, shell))
    return out
