"""JUnit XML for CI: one test case per invariant, and a test case per contract check (pact
interaction, event type, fuzzed service).

A violated invariant is a failure whose text lists every finding (one line per cause, its
first sagas and history lines), then the first violations in full. An inconclusive one is a
*skipped* case whose message says why (neither passed nor failed: CI shows it apart). Notes —
slow sagas, observation gaps — go to the case's ``system-out``.

Built from the run directory alone (``verdicts.json``, ``contracts.json``), so it can be
rebuilt at any time.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from saga_harness.checkers.findings import Finding
from saga_harness.checkers.verdict import VERDICTS_FILE, Verdict, Verdicts, Violation
from saga_harness.reports.inputs import read_stored
from saga_harness.rundir import JUNIT_FILE

MAX_LISTED = 50  # a failure message lists this many violations in full (after every finding), then counts the rest
MAX_EVIDENCE = 5


def _describe(violation: Violation) -> str:
    head = " ".join(f"{k}={v}" for k, v in (("saga_id", violation.saga_id), ("step", violation.step)) if v)
    text = f"{head}: expected {violation.expected}; got {violation.actual}"
    if violation.evidence:
        text += f" [evidence: {', '.join(violation.evidence[:MAX_EVIDENCE])}]"
    return text


def _finding(f: Finding) -> str:
    named = [i for i in f.first if i.saga_id is not None]
    sagas = ", ".join(f"{i.saga_id} [{', '.join(i.evidence[:MAX_EVIDENCE])}]" for i in named)
    more = f" and {f.more_sagas} more saga(s)" if f.more_sagas else ""
    refs = "" if named else " [" + ", ".join(r for i in f.first for r in i.evidence[:MAX_EVIDENCE]) + "]"
    return f"{f.title}" + (f": {sagas}{more}" if named else refs if f.first else "")


def _failure_text(check: Verdict) -> str:
    lines = [f"finding: {_finding(f)}" for f in check.findings if f.status == "violated"]
    lines += [_describe(v) for v in check.violations[:MAX_LISTED]]
    if len(check.violations) > MAX_LISTED:
        lines.append(f"… and {len(check.violations) - MAX_LISTED} more (see {VERDICTS_FILE})")
    return "\n".join(lines)


def _contract_cases(contracts: Mapping[str, Any]) -> list[tuple[str, str, str | None]]:
    """(classname, name, failure text or None) for every contract check."""
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


def junit_xml(
    verdicts: Verdicts | None, contracts: Mapping[str, Any] | None = None, *, suite: str | None = None
) -> str:
    """The JUnit XML text for a run's verdicts (None: a run that checked contracts only) and its
    contract results (as :func:`~saga_harness.reports.inputs.contract_results` gives them)."""
    checks = verdicts.checks if verdicts is not None else ()
    run = verdicts.run if verdicts is not None else None
    name = suite or " ".join(p for p in ("saga-harness", run and run.sut, run and run.scenario) if p)
    failures = sum(c.status == "violated" for c in checks)
    skipped = sum(c.status == "inconclusive" for c in checks)
    extra = _contract_cases(contracts or {})
    root = ET.Element(
        "testsuites",
        name="saga-harness",
        tests=str(len(checks) + len(extra)),
        failures=str(failures + sum(t is not None for _c, _n, t in extra)),
        skipped=str(skipped),
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
        root,
        "testsuite",
        name=name,
        tests=str(len(checks)),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
    )
    props = ET.SubElement(ts, "properties")
    if run is not None:
        for key, value in (
            ("run_id", run.run_id),
            ("seed", run.seed),
            ("sut", run.sut),
            ("scenario", run.scenario),
            ("bugs", run.bugs),
            ("command", run.command),
        ):
            if value is not None and value != "":
                ET.SubElement(props, "property", name=key, value=str(value))
    for check in checks:
        case = ET.SubElement(
            ts, "testcase", classname=f"saga_harness.{name.replace(' ', '_')}", name=check.name, time="0"
        )
        if check.status == "violated":
            causes = sum(f.status == "violated" for f in check.findings)
            failure = ET.SubElement(
                case,
                "failure",
                message=f"{check.name}: {len(check.violations)} violation(s), {causes} finding(s)",
                type="InvariantViolation",
            )
            failure.text = _failure_text(check)
        elif check.status == "inconclusive":
            skipped_el = ET.SubElement(case, "skipped", message=f"inconclusive: {check.reason or 'not judged'}")
            skipped_el.text = "\n".join(f"finding: {_finding(f)}" for f in check.findings if f.status == "inconclusive")
        notes = [f"note: {_finding(f)}" for f in check.findings if f.status == "note"]
        if notes:
            ET.SubElement(case, "system-out").text = "\n".join(notes)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """(Re)write ``junit.xml`` (or ``out``) from a run directory's verdicts and contract results."""
    stored = read_stored(run_dir)
    path = Path(out) if out is not None else Path(run_dir) / JUNIT_FILE
    path.write_text(junit_xml(stored.verdicts, stored.contracts), encoding="utf-8")
    return path
