"""`irtool export ID --format ...`: the post-mortem and the machine timelines.

The same journal gives the same bytes. A broken chain or a missing or altered evidence file is
written into the export itself, said on stderr, and the exit status is 1: the export is still
made, because a damaged record must be reported, not hidden.

The export is written as the journal is read, so an incident of any size takes the same memory.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO, cast

import click

from irtool.cli.common import fail, incident_argument
from irtool.cli.exits import Exit
from irtool.cli.team import caught_up
from irtool.export.formats import FORMATS
from irtool.export.recorded import read_incident
from irtool.journal import JournalError
from irtool.model.untrusted import visible


def _write(path: Path, write: Callable[[TextIO], None]) -> None:
    """All or nothing: a half-written report must not pass for a whole one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


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
    try:
        caught_up(incident_id, "exporting")  # the copy as it stands, if it must be
        recorded = read_incident(incident_id)
    except (ValueError, JournalError) as exc:
        fail(visible(str(exc)))
        return
    with recorded:
        if output:
            _write(output, lambda out: FORMATS[form](recorded, out))
        else:
            # click's own stdout (as `click.echo` writes it): UTF-8 where the locale says less.
            with click.open_file("-", "w") as shown:
                FORMATS[form](recorded, cast(TextIO, shown))
                shown.flush()
    # Problems and gaps name files and quote hosts' words: shown on stderr, never acted on.
    for line in recorded.broken():
        click.echo(visible(f"irtool: {line}"), err=True)
    for gap in recorded.gaps:  # an export writes nothing: what no command recovered yet
        click.echo(visible(f"irtool: {gap}"), err=True)
    if not recorded.intact:
        raise SystemExit(Exit.FAILED)
