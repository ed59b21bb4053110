"""The ``saga-harness`` command line (typer + rich).

Each command group lives in its own module and registers itself on ``app``;
``main()`` turns every :class:`~saga_harness.errors.HarnessError` into a one-paragraph
message and exit status 2.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape
from saga_harness.errors import HarnessError

app = typer.Typer(
    name="saga-harness",
    help="Contract-testing and chaos harness for distributed sagas.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode="markdown",  # a docstring paragraph is rewrapped as one, not broken at its source lines
)
err_console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"saga-harness {version('saga-harness')}")
        except PackageNotFoundError:  # run from a source tree that was not installed
            print("saga-harness (not installed)")
        raise typer.Exit(0)


@app.callback()
def _options(
    show_version: bool = typer.Option(
        False, "--version", "-V", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Contract-testing and chaos harness for distributed sagas."""


def _register() -> None:
    # Imported for their side effect of adding commands to ``app``.
    from saga_harness.cli import calibrate as _calibrate  # noqa: F401
    from saga_harness.cli import chaos as _chaos  # noqa: F401
    from saga_harness.cli import config as _config  # noqa: F401
    from saga_harness.cli import contracts as _contracts  # noqa: F401
    from saga_harness.cli import demo as _demo  # noqa: F401
    from saga_harness.cli import events as _events  # noqa: F401
    from saga_harness.cli import explore as _explore  # noqa: F401
    from saga_harness.cli import load as _load  # noqa: F401
    from saga_harness.cli import replay as _replay  # noqa: F401
    from saga_harness.cli import report as _report  # noqa: F401
    from saga_harness.cli import run as _run  # noqa: F401
    from saga_harness.cli import sut as _sut  # noqa: F401

    try:
        from saga_harness.cli import toxiproxy as _toxiproxy  # noqa: F401
    except ImportError:
        pass


def main() -> None:
    """Entry point of the ``saga-harness`` console script."""
    _register()
    try:
        rc = app(standalone_mode=False)
        # Outside standalone mode click returns typer.Exit's code instead of exiting.
        sys.exit(rc if isinstance(rc, int) else 0)
    except HarnessError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        # Usage errors (typer's vendored click) arrive here outside standalone mode.
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            sys.exit(2)
        raise
