"""The end of a judged run on the command line: its reports written, its verdicts shown, its exit status.

Every command that judges (``run``, ``check``, ``chaos run``, ``load run``) ends here, so
they exit alike: 0 every check holds, 1 a violation proved, 3 inconclusive (no violation
proved, but a check could not be judged: evidence still arriving, the machine starved, a
saga still progressing when observation ended). 2 is a usage, config or start-up error
(``saga_harness.cli.main``)."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from saga_harness.checkers import Verdicts
from saga_harness.cli.display import console, show_paths, show_verdicts
from saga_harness.reports import write_reports


def conclude(verdicts: Verdicts, run_dir: Path, source: Path | None = None) -> int:
    """Write ``junit.xml`` and ``report.html``, show the verdicts and where everything is;
    the exit status: 0 when every check holds, 1 on a violation, 3 when inconclusive. ``source``: the
    run directory holding the history, when the verdicts went elsewhere (``check --out``)."""
    paths = write_reports(run_dir, source)
    show_verdicts(verdicts)
    show_paths([("run directory", run_dir), ("report", paths.html)])
    if paths.html_error:
        console.print(f"[yellow]{escape(paths.html_error)}[/]", highlight=False)
    return verdicts.exit_code
