"""The exploration report (``explore.html``) from ``explore.json`` alone: the call × fault grid.

One row per call the sagas make (link, method and path pattern), one column per fault kind; each cell
says what one fault at that call did — ok, VIOLATED (with the checkers that failed), inconclusive, or
not hit (the run never made that call) — and links to that run's own report. The baseline (the clean
learning run) and the pruning figures are above the grid. One self-contained file: inline CSS, no
script, no network request; every text is escaped (autoescape), only relative links are emitted.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from saga_harness.errors import HarnessError

TEMPLATES = Path(__file__).with_name("templates")


def _link(run_dir: Any, base: Path) -> str | None:
    """A relative link to a cell's report, inside the exploration's directory (else None)."""
    if not isinstance(run_dir, str) or not run_dir:
        return None
    target = Path(run_dir) / "report.html"
    try:
        rel = os.path.relpath(target, base)
    except ValueError:
        return None
    return None if rel.startswith("..") else rel


def grid(data: dict[str, Any], base: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """The grid's columns (fault kinds) and rows (calls, each with its cells by kind)."""
    faults = [str(f) for f in data.get("faults", [])]
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for cell in data.get("cells", []):
        if not isinstance(cell, dict):
            continue
        key = (str(cell.get("link", "")), str(cell.get("call", "")))
        row = rows.setdefault(key, {"link": key[0], "call": key[1], "cells": {}})
        checkers = sorted({str(k).split(" · ")[0] for k in cell.get("findings", [])})
        row["cells"][str(cell.get("fault"))] = {
            "verdict": cell.get("verdict", "?"),
            "hit": cell.get("hit"),
            "checkers": checkers,
            "findings": list(cell.get("findings", [])),
            "href": _link(cell.get("run_dir"), base),
            "seconds": cell.get("seconds", 0),
            "error": cell.get("error"),
        }
    used = [f for f in faults if any(f in r["cells"] for r in rows.values())]
    return used or faults, list(rows.values())


def build_explore_report(explore: str | Path, out: str | Path | None = None) -> Path:
    """Write ``explore.html`` beside ``explore`` (an explore.json or its directory); return its path."""
    path = Path(explore)
    if path.is_dir():
        path = path / "explore.json"
    if not path.is_file():
        raise HarnessError(f"{path}: no explore.json; run `saga-harness explore` first")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{path}: not valid JSON ({exc}); was the exploration interrupted?") from None
    target = Path(out) if out is not None else path.with_name("explore.html")
    faults, rows = grid(data, target.parent.resolve())
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    html = env.get_template("explore.html.j2").render(
        data=data,
        faults=faults,
        rows=rows,
        baseline=data.get("baseline") or {},
        violated=int(data.get("violated") or 0),
        generated=time.strftime("%Y-%m-%d %H:%M:%S"),
    )
    target.write_text(html, encoding="utf-8")
    return target
