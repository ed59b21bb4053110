"""The exploration report: the call × fault grid from explore.json alone, escaped, with relative links."""

from __future__ import annotations

import json
import re

import pytest
from saga_harness.errors import HarnessError
from saga_harness.reports import build_explore_report


def cell(tmp_path, link, call, fault, verdict, *, hit=True, findings=(), name="run"):
    run = tmp_path / name
    return {
        "link": link,
        "call": call,
        "fault": fault,
        "verdict": verdict,
        "hit": hit,
        "findings": list(findings),
        "run_dir": str(run),
        "seconds": 3.0,
        "error": None,
    }


def exploration(tmp_path, cells):
    data = {
        "sut": "reference",
        "seed": 0,
        "faults": ["http_error", "lose_answer", "duplicate_request"],
        "sagas": 4,
        "runs": len(cells) + 1,
        "unpruned": 12,
        "planned": len(cells),
        "skipped": 0,
        "seconds": 60,
        "violated": sum(c["verdict"] == "violated" for c in cells),
        "baseline": {"verdict": "ok", "findings": []},
        "calls": [],
        "cells": cells,
    }
    path = tmp_path / "explore.json"
    path.write_text(json.dumps(data))
    return path


def test_each_call_is_a_row_and_each_fault_a_column_with_what_it_did(tmp_path):
    cells = [
        cell(tmp_path, "taskqueue->payment", "POST /commands/authorize", "lose_answer", "ok", name="a"),
        cell(
            tmp_path,
            "taskqueue->payment",
            "POST /commands/capture",
            "lose_answer",
            "violated",
            findings=["idempotency · capture_payment · took effect twice", "conservation · - · more money"],
            name="b",
        ),
        cell(tmp_path, "taskqueue->payment", "POST /commands/capture", "http_error", "ok", hit=False, name="c"),
    ]
    html = build_explore_report(exploration(tmp_path, cells)).read_text()
    assert "1 of 3 points violated" in html
    rows = re.findall(r"<tr>\s*<td><code>(.*?)</code></td><td><code>(.*?)</code></td>", html)
    assert rows == [
        ("taskqueue-&gt;payment", "POST /commands/authorize"),
        ("taskqueue-&gt;payment", "POST /commands/capture"),
    ]
    assert 'data-fault="lose_answer" data-verdict="violated"' in html
    assert "conservation, idempotency" in html  # the checkers that failed, in the cell
    assert "not hit" in html and 'href="b/report.html"' in html
    assert "http://" not in html.replace("http://www.w3.org", "")


def test_text_from_the_system_is_escaped(tmp_path):
    evil = cell(tmp_path, "a->b", "POST /x/<script>alert(1)</script>", "lose_answer", "ok")
    html = build_explore_report(exploration(tmp_path, [evil])).read_text()
    assert "<script>alert" not in html and "&lt;script&gt;" in html


def test_a_missing_or_broken_file_is_a_clear_error(tmp_path):
    with pytest.raises(HarnessError, match="no explore.json"):
        build_explore_report(tmp_path)
    (tmp_path / "explore.json").write_text("{")
    with pytest.raises(HarnessError, match="not valid JSON"):
        build_explore_report(tmp_path)
