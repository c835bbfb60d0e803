"""`irtool export ID --format ...`: the post-mortem and the machine timelines.

The same journal gives the same bytes. A broken chain or a missing or altered evidence file is
written into the export itself, said on stderr, and the exit status is 1: the export is still
made, because a damaged record must be reported, not hidden.
"""

from __future__ import annotations

import gc
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from irtool.cli.common import fail, incident_argument
from irtool.cli.exits import Exit
from irtool.export.formats import FORMATS
from irtool.export.recorded import read_incident
from irtool.journal import JournalError
from irtool.model.untrusted import visible


def _write(path: Path, text: str) -> None:
    """All or nothing: a half-written report must not pass for a whole one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextmanager
def _collector_off() -> Iterator[None]:
    """Millions of small objects are made and none is garbage: the cyclic collector would walk
    the heap again and again for nothing (half the time of a 100k-event post-mortem)."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


@click.command()
@incident_argument
@click.option(
    "--format", "form", type=click.Choice(list(FORMATS)), default="markdown", show_default=True
)
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), help="File to write (else stdout)."
)
def export(incident_id: str, form: str, output: Path | None) -> None:
    """Export incident ID: a post-mortem (markdown, html) or a timeline (json, csv, timesketch)."""
    with _collector_off():
        try:
            recorded = read_incident(incident_id)
        except (ValueError, JournalError) as exc:
            fail(visible(str(exc)))
            return
        text = FORMATS[form](recorded)
    if output:
        _write(output, text)
    else:
        click.echo(text, nl=False)
    # Problems and gaps name files and quote hosts' words: shown on stderr, never acted on.
    for line in recorded.broken():
        click.echo(visible(f"irtool: {line}"), err=True)
    for gap in recorded.gaps:  # an export writes nothing: what no command recovered yet
        click.echo(visible(f"irtool: {gap}"), err=True)
    if not recorded.intact:
        raise SystemExit(Exit.FAILED)
