"""``saga-harness toxiproxy serve``: the embedded Toxiproxy-compatible server, in the foreground."""

from __future__ import annotations

import typer
from rich.console import Console
from saga_harness.cli import app

toxiproxy_app = typer.Typer(
    help="The embedded Toxiproxy-compatible server (Toxiproxy 2.x's HTTP API and toxics).", no_args_is_help=True
)
app.add_typer(toxiproxy_app, name="toxiproxy")
console = Console(stderr=True)


@toxiproxy_app.command("serve")
def serve_command(
    host: str = typer.Option("127.0.0.1", "--host", help="address of the HTTP API (loopback unless allowed)"),
    port: int = typer.Option(8474, "--port", min=0, max=65535, help="port of the HTTP API; 0 picks a free one"),
    allow_host: list[str] = typer.Option(
        [], "--allow-host", help="a non-loopback host proxies may listen on or connect to (repeatable)"
    ),
) -> None:
    """Serve until Ctrl-C; point toxiproxy clients (or TOXIPROXY_URL) at the printed URL."""
    from saga_harness.chaos.server import serve  # the server's modules: not for `--help`

    def ready(url: str) -> None:
        console.print(f"toxiproxy API on [bold]{url}[/] (Ctrl-C stops it)", highlight=False)

    serve(host, port, allowed_hosts=allow_host, on_ready=ready)
    console.print("toxiproxy stopped", highlight=False)
