"""The after-action review of an exercise as a document section: for the export, the
facilitator's screen and `irtool incident review`."""

from __future__ import annotations

from collections.abc import Iterator

from irtool.exercise.review import Review, clock
from irtool.export.report import Block, Bullets, Code, Heading, Para, Row, Strong, Table


def after_action(found: Review) -> Iterator[Block]:
    speed = f"{found.speed:g}x" if found.speed != 1 else "real time"
    yield Heading(2, "After-action review (exercise)", "review")
    yield Para(
        (
            "Scenario: ",
            Strong(found.scenario),
            " (",
            Code(found.scenario_id),
            f"), clock {speed}, paused {clock(found.paused)} in all. Times are T+ on the "
            "exercise clock, with the wall clock in brackets.",
        )
    )
    yield Para((f"Length: {clock(found.length.exercise)} ({clock(found.length.wall)})",))
    yield Table(
        ("Milestone", "Exercise clock", "Wall clock", "Detail"),
        [
            Row(
                (
                    (m.what,),
                    (clock(m.span.exercise) if m.span else "never",),
                    (clock(m.span.wall) if m.span else "never",),
                    (m.detail,),
                )
            )
            for m in found.milestones
        ],
    )
    yield Heading(3, "Injects")
    if found.injects:
        yield Table(
            ("Inject", "To", "Fired", "Handled", "Took", "How"),
            [
                Row(
                    (
                        (f"{i.title} (", Code(i.id), f", {i.why})"),
                        (i.to,),
                        (clock(i.fired.exercise),),
                        (clock(i.handled.exercise) if i.handled else "–",),
                        (clock(i.took),),
                        (f"{i.how} ({i.by})",) if i.handled else (Strong("not handled"),),
                    )
                )
                for i in found.injects
            ],
        )
    else:
        yield Para(("No inject fired.",))
    if found.not_fired:
        spans: list[str | Code] = ["Not fired: "]
        for n, (inject, title) in enumerate(found.not_fired):
            spans += [", "] if n else []
            spans += [Code(inject), f" ({title})"]
        yield Para(tuple(spans))
    yield Heading(3, "Steps skipped")
    if found.skipped:
        yield Bullets(
            [
                (Code(step), f" {title}: skipped by {who}: {why}")
                for step, title, who, why in found.skipped
            ]
        )
    else:
        yield Para(("None.",))
    yield Heading(3, "Steps bypassed")
    if found.bypassed:
        yield Bullets(
            [
                (Code(step), f" {title}: never reached: {route}")
                for step, title, route in found.bypassed
            ]
        )
    else:
        yield Para(("None: no decision's route went past a step.",))
    yield Heading(3, "Contacts who did not answer")
    if found.unanswered:
        yield Bullets(
            [
                (f"{u.role}: {u.person}, {u.outcome.replace('-', ' ')} at {clock(u.at.exercise)}",)
                for u in found.unanswered
            ]
        )
    else:
        yield Para(("Everyone called answered.",))
    if found.unreached:
        yield Para(("No one was reached for: " + ", ".join(found.unreached) + ".",))
    yield Heading(3, "Facilitator's observations")
    if found.observations:
        yield Bullets(
            [(f"{clock(at.exercise)} {who}: {text}",) for at, who, text in found.observations]
        )
    else:
        yield Para(("None recorded.",))
