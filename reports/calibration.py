"""The calibration report (``calibration.html``) from ``calibration.json`` alone.

Each system's summary (clean runs, false positives and inconclusive runs apart, those
under CPU contention apart), a bug × checker detection matrix (how many of each bug's
runs each checker flagged, the expected checkers marked), then every clean run and
every bug run.
One self-contained file: inline CSS, no script, no network request; every text
is escaped by the template engine (autoescape), and only relative links to the
runs' own reports are emitted.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from saga_harness.checkers import DEFAULT as DEFAULT_CHECKERS
from saga_harness.errors import HarnessError

TEMPLATES = Path(__file__).with_name("templates")


def _env() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))


def _local(path: Any) -> str | None:
    """``path`` if it is a relative link inside the calibration directory, else None (no external links)."""
    if not isinstance(path, str) or not path:
        return None
    parts = urlsplit(path)
    if parts.scheme or parts.netloc or path.startswith(("/", "\\")) or ".." in Path(path).parts:
        return None
    return path


def _bug_rows(data: dict[str, Any], checkers: list[str]) -> list[dict[str, Any]]:
    rows = []
    for name, bug in sorted(data.get("bugs", {}).items()):
        runs = int(bug.get("runs", 0))
        detected = int(bug.get("detected_in", 0))
        by_checker = dict(bug.get("by_checker") or {})
        for flagged in bug.get("checkers", []):  # a hand-built file may have only the list
            by_checker.setdefault(flagged, 1 if runs else 0)
        expected = set(bug.get("expected_checkers", []))
        cells = [
            {"checker": c, "count": int(by_checker.get(c, 0)), "expected": c in expected, "runs": runs}
            for c in checkers
        ]
        rows.append(
            {
                "sut": bug.get("sut") or "reference",
                "held_back": int(bug.get("held_back") or 0),
                "busy": bug.get("under_contention") or {},
                "name": name,
                "description": bug.get("description", ""),
                "runs": runs,
                "detected_in": detected,
                "ok": runs >= 1 and detected == runs,
                "scenarios": bug.get("scenarios", []),
                "cells": cells,
            }
        )
    return rows


def _checkers(data: dict[str, Any]) -> list[str]:
    """The matrix's columns: the checkers the runs were judged by, the default ones first."""
    seen = list(data.get("checkers") or [])
    for bug in data.get("bugs", {}).values():
        seen += list(bug.get("checkers", [])) + list(bug.get("expected_checkers", []))
        seen += list((bug.get("by_checker") or {}).keys())
    ordered = [c for c in DEFAULT_CHECKERS if c in seen or not data.get("checkers")]
    return ordered + sorted({c for c in seen if c not in ordered})


def _runs(data: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for r in data.get("runs", []):
        if not isinstance(r, dict):
            continue
        rows.append({**r, "href": _local(r.get("report")) or _local(r.get("dir"))})
    return rows


def build_calibration_report(calibration: str | Path, out: str | Path | None = None) -> Path:
    """Write ``calibration.html`` beside ``calibration`` (a calibration.json or its directory); return its path."""
    path = Path(calibration)
    if path.is_dir():
        path = path / "calibration.json"
    if not path.is_file():
        raise HarnessError(f"{path}: no calibration.json; run `saga-harness calibrate` first")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{path}: not valid JSON ({exc}); was the calibration interrupted?") from None
    try:
        seconds = float(data.get("seconds") or 0)
    except (TypeError, ValueError):
        seconds = 0.0
    checkers = _checkers(data)
    bugs = _bug_rows(data, checkers)
    runs = _runs(data)
    clean = data.get("clean", {})
    suts = [
        {"name": name, "clean": part.get("clean") or {}, "ok": part.get("ok", True) is not False,
         "bugs": [b for b in bugs if b["name"] in (part.get("bugs") or [])]}
        for name, part in (data.get("suts") or {}).items()
        if isinstance(part, dict)
    ]  # fmt: skip
    ok = (
        all(b["ok"] for b in bugs)
        and bool(bugs)
        and not clean.get("false_positives")
        and not clean.get("errors")
        and data.get("ok", True) is not False
    )
    html = (
        _env()
        .get_template("calibration.html.j2")
        .render(
            data=data,
            seconds=seconds,
            ok=ok,
            bugs=bugs,
            checkers=checkers,
            clean=clean,
            suts=suts,
            contention=data.get("contention") if isinstance(data.get("contention"), dict) else None,
            clean_runs=[r for r in runs if not r.get("bug")],
            bug_runs=[r for r in runs if r.get("bug")],
            skipped=[s for s in data.get("skipped", []) if isinstance(s, dict)],
            generated=time.strftime("%Y-%m-%d %H:%M:%S"),
        )
    )
    target = Path(out) if out is not None else path.with_name("calibration.html")
    target.write_text(html, encoding="utf-8")
    return target
