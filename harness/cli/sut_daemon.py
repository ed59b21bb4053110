"""The background owner of a detached reference system (``sut up --detach``).

Started by ``saga-harness sut up --detach`` in its own session, it runs the
system through the supervisor (so the components die with it, even on
SIGKILL), writes the state file, and reports ``{"ok": true}`` or
``{"error": "..."}`` once on the pipe it was handed; ``sut down`` stops it
with SIGTERM. Not meant to be run by hand.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from saga_harness.errors import HarnessError


def main(argv: list[str]) -> int:
    """Run the system described by the JSON options in ``argv[1]``; return the exit status."""
    options = json.loads(argv[1])
    status_fd: int | None = options["status_fd"]

    def report(message: dict[str, object]) -> None:
        nonlocal status_fd
        if status_fd is None:
            return
        try:
            os.write(status_fd, json.dumps(message).encode())
        except OSError:
            pass  # the CLI gave up waiting; the system runs on regardless
        finally:
            os.close(status_fd)
            status_fd = None

    # Imported after the pipe is known, so that even an import error is reported.
    try:
        from saga_harness.cli.sut import serve

        serve(
            bugs=tuple(options["bugs"]),
            database_url=options["database_url"],
            run_dir=Path(options["run_dir"]),
            state_file=Path(options["state_file"]),
            on_ready=lambda system: report({"ok": True}),
        )
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        report({"error": str(exc)})
        return 2
    except BaseException as exc:
        report({"error": f"the sut daemon failed: {type(exc).__name__}: {exc}"})
        raise
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
