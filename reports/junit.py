"""JUnit XML for CI: one test case per invariant, violations in the failure message.

Built from the ``verdicts.json`` document alone, so it can be rebuilt from a
run directory at any time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

MAX_LISTED = 50  # a failure message lists this many violations, then counts the rest


def _describe(violation: Mapping[str, Any]) -> str:
    parts = []
    for key in ("saga_id", "step"):
        if violation.get(key):
            parts.append(f"{key}={violation[key]}")
    head = " ".join(parts)
    expected, actual = violation.get("expected"), violation.get("actual")
    text = f"{head}: expected {expected}; got {actual}" if expected or actual else json.dumps(violation)[:500]
    evidence = violation.get("evidence") or []
    if evidence:
        refs = [e.get("ref", str(e)) if isinstance(e, Mapping) else str(e) for e in evidence[:5]]
        text += f" [evidence: {', '.join(refs)}]"
    return text


def _contract_cases(contracts: Mapping[str, Any]) -> list[tuple[str, str, str | None]]:
    """(classname, name, failure text or None) for every contract check in ``contracts.json``."""
    cases: list[tuple[str, str, str | None]] = []
    for i in (contracts.get("pacts") or {}).get("interactions", []):
        text = None
        if not (i.get("ok") or i.get("pending")):
            text = "\n".join(f"{m.get('path') or m.get('kind')}: {m.get('reason')}" for m in i.get("mismatches", []))
        cases.append((f"contracts.pact.{i.get('provider')}", f"{i.get('consumer')}: {i.get('description')}", text))
    for etype, counts in ((contracts.get("events") or {}).get("by_type") or {}).items():
        bad = int(counts.get("invalid", 0))
        cases.append(("contracts.events", str(etype), f"{bad} invalid event(s); see verdicts.json" if bad else None))
    for svc in (contracts.get("fuzz") or {}).get("services", []):
        found = [
            f"{f.get('code')} {f.get('title')}: {', '.join(f.get('operations', []))}" for f in svc.get("failures", [])
        ]
        found += [str(e) for e in svc.get("errors", [])]
        cases.append(("contracts.fuzz", str(svc.get("service")), "\n".join(found) if found else None))
    return cases


def junit_xml(verdicts: Mapping[str, Any], suite: str | None = None, contracts: Mapping[str, Any] | None = None) -> str:
    """The JUnit XML text for a verdicts document (``verdicts.json``) and the run's ``contracts.json``."""
    checks = list(verdicts.get("checks", []))
    name = suite or f"saga-harness {verdicts.get('sut', '')} {verdicts.get('scenario') or ''}".strip()
    failures = sum(not c.get("ok", False) for c in checks)
    extra = _contract_cases(contracts or {})
    root = ET.Element(
        "testsuites",
        name="saga-harness",
        tests=str(len(checks) + len(extra)),
        failures=str(failures + sum(t is not None for _c, _n, t in extra)),
    )
    if extra:
        cs = ET.SubElement(
            root,
            "testsuite",
            name="contracts",
            tests=str(len(extra)),
            errors="0",
            skipped="0",
            failures=str(sum(t is not None for _c, _n, t in extra)),
        )
        for classname, case_name, text in extra:
            case = ET.SubElement(cs, "testcase", classname=classname, name=case_name, time="0")
            if text is not None:
                ET.SubElement(
                    case, "failure", message=f"{case_name}: contract broken", type="ContractViolation"
                ).text = text
    if not checks and extra:
        ET.indent(root)
        return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
    ts = ET.SubElement(
        root, "testsuite", name=name, tests=str(len(checks)), failures=str(failures), errors="0", skipped="0"
    )
    props = ET.SubElement(ts, "properties")
    for key in ("run_id", "seed", "sut", "scenario", "command"):
        if verdicts.get(key) is not None:
            ET.SubElement(props, "property", name=key, value=str(verdicts[key]))
    for check in checks:
        case = ET.SubElement(
            ts,
            "testcase",
            classname=f"saga_harness.{name.replace(' ', '_')}",
            name=str(check.get("name")),
            time=str(check.get("seconds", 0)),
        )
        if not check.get("ok", False):
            violations = check.get("violations", [])
            lines = [_describe(v) for v in violations[:MAX_LISTED]]
            if len(violations) > MAX_LISTED:
                lines.append(f"… and {len(violations) - MAX_LISTED} more (see verdicts.json)")
            failure = ET.SubElement(
                case,
                "failure",
                message=f"{check.get('name')}: {len(violations)} violation(s)",
                type="InvariantViolation",
            )
            failure.text = "\n".join(lines)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(
    verdicts: Mapping[str, Any], path: str | Path, suite: str | None = None, contracts: Mapping[str, Any] | None = None
) -> Path:
    """Write ``junit.xml`` for ``verdicts`` (and the run's contract results) to ``path``."""
    path = Path(path)
    path.write_text(junit_xml(verdicts, suite, contracts), encoding="utf-8")
    return path
