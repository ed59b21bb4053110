"""``python -m saga_harness.chaos.httpfaults [--host H] [--port N] [--allow-host HOST ...] [--parent PID]``.

Prints the API's URL on one line of stdout once it listens (``--port 0``, the default,
picks a free port), then nothing more; stops cleanly on SIGINT or SIGTERM, and by itself
once ``--parent`` is no longer its parent process.
"""

from __future__ import annotations

import argparse
import sys

from saga_harness.chaos.httpfaults.server import serve
from saga_harness.errors import HarnessError


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and serve until stopped; 2 if the server cannot start."""
    parser = argparse.ArgumentParser(
        prog="python -m saga_harness.chaos.httpfaults", description="HTTP fault proxy (request-level faults on links)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="API address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="API port (default 0: a free one)")
    parser.add_argument("--allow-host", action="append", default=[], help="a non-loopback host links may use")
    parser.add_argument("--parent", type=int, default=None, help="exit when this process is no longer our parent")
    args = parser.parse_args(argv)

    def ready(url: str) -> None:
        print(url, flush=True)

    try:
        serve(args.host, args.port, allowed_hosts=args.allow_host, on_ready=ready, parent_pid=args.parent)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
