"""CloudEvent schemas: the envelope, the reference system's data schemas, the registry, the checker."""

from __future__ import annotations

import json

import pytest
import saga_harness.checkers as checkers_module
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from handbuilt import SHOP
from saga_harness.checkers import DEFAULT, checkers, run_checks
from saga_harness.contracts.checker import check
from saga_harness.contracts.events import EventSummary, SchemaRegistry, bundled_registry, validate_event
from saga_harness.errors import ConfigError
from saga_harness.history import CapturedEvent, build_index
from saga_harness.model import SagaModel
from saga_harness.models import reference_model
from saga_harness.sink import event_from_wire
from saga_harness.testing import HistoryBuilder
from sagashop import bugs, events
from sagashop.services import payment

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
AUTHORIZED = "com.sagashop.payment.authorized"


def payment_event(**data_over: object) -> dict:
    """A payment.authorized event exactly as the reference system builds it."""
    data = {"saga_id": "s1", "command_id": "s1:authorize_payment", "payment_id": "pay_s1", **payment.money(1250)}
    data.update(data_over)
    return events.new_event(
        type_=AUTHORIZED, source="/sagashop/payment", data=data, saga_id="s1", traceparent=TRACEPARENT
    )


def pointers(report) -> list[str]:
    return [f.pointer for f in report.failures]


# -- the envelope --------------------------------------------------------------
def test_a_reference_event_is_valid():
    report = validate_event(payment_event())
    assert report.status == "valid" and report.failures == ()
    assert report.type == AUTHORIZED and report.schema.endswith(AUTHORIZED)


def test_missing_id_is_rejected():
    event = payment_event()
    del event["id"]
    report = validate_event(event)
    assert report.status == "invalid" and pointers(report) == ["/id"]
    assert "'id' is missing" in report.failures[0].reason


def test_missing_specversion_is_rejected():
    event = payment_event()
    del event["specversion"]
    assert pointers(validate_event(event)) == ["/specversion"]


def test_specversion_0_2_is_rejected():
    report = validate_event({**payment_event(), "specversion": "0.2"})
    assert pointers(report) == ["/specversion"]
    assert "'1.0'" in report.failures[0].reason and "'0.2'" in report.failures[0].reason


@pytest.mark.parametrize("name", ["Sagaid", "saga-id", "saga_id", "a" * 21])
def test_a_badly_named_extension_attribute_is_rejected(name):
    report = validate_event({**payment_event(), name: "x"})
    assert report.status == "invalid" and pointers(report) == [f"/{name}"]
    assert "name" in report.failures[0].reason


def test_a_20_character_extension_name_is_fine():
    assert validate_event({**payment_event(), "a" * 20: "x"}).status == "valid"


def test_data_together_with_data_base64_is_rejected():
    report = validate_event({**payment_event(), "data_base64": "AAAA"})
    assert report.status == "invalid"
    assert [f.reason for f in report.failures] == ["data and data_base64 are mutually exclusive"]


def test_empty_source_is_rejected():
    report = validate_event({**payment_event(), "source": ""})
    assert pointers(report) == ["/source"] and "empty" in report.failures[0].reason


@pytest.mark.parametrize(
    "value", ["2026-01-01", "2026-01-01 10:00:00Z", "2026-13-01T00:00:00Z", "2026-01-01T10:00:00", "yesterday"]
)
def test_time_not_rfc3339_is_rejected(value):
    report = validate_event({**payment_event(), "time": value})
    assert pointers(report) == ["/time"] and "RFC 3339" in report.failures[0].reason


@pytest.mark.parametrize("value", ["2026-01-01T10:00:00Z", "2026-01-01t10:00:00.123456+05:30", None])
def test_rfc3339_times_and_unset_time_are_fine(value):
    assert validate_event({**payment_event(), "time": value}).status == "valid"


@pytest.mark.parametrize("value", [{"a": 1}, [1], 1.5, 2**31])
def test_an_extension_value_must_be_a_cloudevents_type(value):
    assert pointers(validate_event({**payment_event(), "sagaid": value})) == ["/sagaid"]


def test_a_non_object_is_invalid():
    report = validate_event(["not", "an", "event"])
    assert report.status == "invalid" and "JSON object" in report.failures[0].reason


# -- data schemas --------------------------------------------------------------
def test_the_renamed_amount_field_makes_payment_events_invalid(monkeypatch):
    monkeypatch.setattr(bugs, "_active", frozenset({"payment.renamed_field"}))
    event = payment_event()  # built by the real (buggy) money() helper
    assert "amount" in event["data"] and "amount_cents" not in event["data"]
    report = validate_event(event)
    assert report.status == "invalid"
    [failure] = report.failures
    assert failure.pointer in ("/data", "/data/amount_cents") and "amount_cents" in failure.reason


def test_a_wrong_field_type_points_into_data():
    report = validate_event(payment_event(amount_cents="12.50"))
    assert pointers(report) == ["/data/amount_cents"]


def test_an_unknown_type_is_reported_unknown_not_invalid():
    report = validate_event({**payment_event(), "type": "com.example.something.happened"})
    assert report.status == "unknown" and report.failures == () and report.schema is None


def test_a_known_type_without_data_is_invalid():
    event = payment_event()
    del event["data"]
    assert pointers(validate_event(event)) == ["/data"]


def test_every_indexed_type_has_a_schema_that_requires_saga_id():
    registry = bundled_registry()
    assert len(registry.types) == 25
    for etype in registry.types:
        report = registry.validate({**payment_event(), "type": etype, "data": {}})
        assert "/data/saga_id" in pointers(report), etype


def test_the_sdk_fills_in_a_missing_id_that_wire_validation_reports():
    headers = {
        "ce-specversion": "1.0",
        "ce-type": AUTHORIZED,
        "ce-source": "/sagashop/payment",
        "content-type": "application/json",
    }
    body = json.dumps(payment_event()["data"]).encode()
    parsed = ce_http.from_http(ce_http.HTTPMessage(headers=headers, body=body), JSONFormat(), CloudEvent)
    assert parsed.get_id()  # the SDK made one up: a missing id would go unnoticed
    report = validate_event(event_from_wire(headers, body))
    assert report.status == "invalid" and pointers(report) == ["/id"]


def test_binary_mode_header_values_are_percent_decoded_as_the_http_binding_says():
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "e%2F1",
        "ce-type": AUTHORIZED,
        "ce-source": "/sagashop/payment",
        "ce-subject": "caf%C3%A9%20au%20lait",
        "ce-time": "2026-01-01T00%3A00%3A00%2B00%3A00",
        "content-type": "application/json",
    }
    event = event_from_wire(headers, json.dumps(payment_event()["data"]).encode())
    assert event["subject"] == "café au lait" and event["id"] == "e/1"
    assert event["time"] == "2026-01-01T00:00:00+00:00"  # text, as sent, judged by the schema
    # what the SDK itself decodes, the sink agrees with
    parsed = ce_http.from_http(ce_http.HTTPMessage(headers=headers, body=b"{}"), JSONFormat(), CloudEvent)
    assert parsed.get_attributes()["subject"] == event["subject"]


# -- the registry --------------------------------------------------------------
def _write(path, obj) -> None:
    path.write_text(json.dumps(obj), encoding="utf-8")


def test_a_user_directory_adds_types_and_overrides_bundled_ones(tmp_path):
    _write(tmp_path / "common.json", {"$defs": {"ref": {"type": "string", "pattern": "^BK-"}}})
    _write(
        tmp_path / "booked.json",
        {"type": "object", "required": ["booking"], "properties": {"booking": {"$ref": "common.json#/$defs/ref"}}},
    )
    _write(tmp_path / "auth.json", {"type": "object", "required": ["merchant"]})
    _write(tmp_path / "index.json", {"travel.booked": "booked.json", AUTHORIZED: "auth.json"})
    registry = SchemaRegistry.load(tmp_path)
    base = {"specversion": "1.0", "id": "1", "source": "/t", "type": "travel.booked"}
    assert registry.validate({**base, "data": {"booking": "BK-1"}}).status == "valid"
    assert pointers(registry.validate({**base, "data": {"booking": "X"}})) == ["/data/booking"]
    assert pointers(registry.validate(payment_event())) == ["/data/merchant"]  # the user's schema won
    assert "com.sagashop.order.created" in registry.types
    only_user = SchemaRegistry.load(tmp_path, bundled=False)
    assert only_user.types == {"travel.booked", AUTHORIZED}
    merged = bundled_registry().merged(tmp_path)
    assert merged.types == registry.types and bundled_registry().validate(payment_event()).valid


def test_the_dataschema_uri_selects_a_loaded_schema():
    uri = bundled_registry().schema_uri(AUTHORIZED)
    event = {**payment_event(), "type": "com.example.other", "dataschema": uri}
    report = validate_event(event)
    assert report.status == "valid" and report.schema == uri
    assert pointers(validate_event({**event, "data": {}}))[0].startswith("/data/")


@pytest.mark.parametrize(
    "files,needle",
    [
        (None, "does not exist"),
        ({}, "index.json"),
        ({"index.json": "[1]"}, "index.json"),
        ({"index.json": '{"t": "gone.json"}'}, "gone.json"),
        ({"index.json": '{"t": "s.json"}', "s.json": "{nope"}, "s.json is not valid JSON"),
        ({"index.json": '{"t": "s.json"}', "s.json": '{"type": 12}'}, "s.json is not a valid JSON Schema"),
    ],
)
def test_a_broken_schema_directory_is_a_config_error_naming_the_file(tmp_path, files, needle):
    directory = tmp_path / "schemas"
    if files is not None:
        directory.mkdir()
        for name, text in files.items():
            (directory / name).write_text(text)
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        SchemaRegistry.load(directory)


def test_the_summary_counts_by_type_and_caps_failures():
    summary = EventSummary(cap=2)
    bad = {**payment_event(), "specversion": "0.2"}
    for i in range(3):
        summary.add(validate_event(bad), where=f"line {i + 1}")
    summary.add(validate_event(payment_event()))
    summary.add(validate_event({**payment_event(), "type": "x.y"}))
    doc = summary.to_json()
    assert (doc["events"], doc["valid"], doc["invalid"], doc["unknown"]) == (5, 1, 3, 1)
    assert doc["by_type"][AUTHORIZED] == {"valid": 1, "invalid": 3, "unknown": 0}
    assert doc["unknown_types"] == ["x.y"]
    fails = doc["failures"][AUTHORIZED]
    assert len(fails["events"]) == 2 and fails["omitted"] == 1
    assert fails["events"][0]["where"] == "line 1" and fails["events"][0]["failures"][0]["pointer"] == "/specversion"
    json.dumps(doc)  # it is JSON


# -- the checker ---------------------------------------------------------------
def _authorized(b: HistoryBuilder, sid: str, event_id: str | None = None, **data: object) -> dict:
    fields = {"command_id": f"{sid}:authorize_payment", "payment_id": f"pay_{sid}", "amount_cents": 1250, **data}
    return b.event(AUTHORIZED, sid, event_id=event_id, source="/sagashop/payment", **fields)


def test_the_checker_passes_a_history_of_valid_events():
    b = HistoryBuilder()
    b.saga("s1")
    _authorized(b, "s1")
    b.event("com.sagashop.saga.completed", "s1", state="COMPLETED", outcome="completed")
    b.event("com.example.not.ours", "s1")
    verdict = b.check(reference_model(), ["contracts"])["contracts"]
    assert verdict.ok, verdict.violations
    assert verdict.stats["events_checked"] == 3 and verdict.stats["valid"] == 2
    assert verdict.stats["unknown_types"] == ["com.example.not.ours"]
    assert verdict.stats["by_type"][AUTHORIZED] == {"valid": 1, "invalid": 0, "unknown": 0}


def test_the_checker_names_the_saga_step_pointer_and_evidence_of_an_invalid_event():
    b = HistoryBuilder()
    b.saga("s7")
    entry = _authorized(b, "s7", event_id="ev-bad")
    entry["event"]["data"]["amount"] = entry["event"]["data"].pop("amount_cents")
    redelivery = b.add(CapturedEvent(json.loads(json.dumps(entry["event"]))), process="sink")
    verdict = b.check(reference_model(), ["contracts"])["contracts"]
    assert not verdict.ok
    [v] = verdict.violations  # the redelivery is the same event: one violation, both lines as evidence
    assert v.checker == "contracts" and v.saga_id == "s7" and v.step == "authorize_payment"
    assert "ev-bad" in v.expected and AUTHORIZED in v.expected
    assert "/data/amount_cents" in v.actual and "amount_cents" in v.actual
    assert v.evidence == (entry["ref"], redelivery["ref"])
    assert verdict.stats["deliveries"] == 2 and verdict.stats["invalid"] == 1


def test_the_checker_finds_the_saga_id_in_the_sagaid_extension():
    b = HistoryBuilder()
    entry = b.event("com.example.thing", "ignored")
    entry["event"].update(sagaid="s9", specversion="0.3", data={})
    [v] = b.check(SagaModel.model_validate(SHOP), ["contracts"])["contracts"].violations
    assert v.saga_id == "s9" and "/specversion" in v.actual


def test_the_index_keeps_events_only_when_asked(monkeypatch):
    b = HistoryBuilder()
    b.saga("s1")
    _authorized(b, "s1")
    model = reference_model()
    assert build_index(b.entries, model).captured is None
    kept = build_index(b.entries, model, keep_events=True).captured
    assert kept == [(b.entries[-1]["ref"], b.entries[-1]["event"])]

    asked: list[bool] = []
    real = checkers_module.build_index

    def spy(entries, model, keep_events=False):
        asked.append(keep_events)
        return real(entries, model, keep_events)

    monkeypatch.setattr(checkers_module, "build_index", spy)
    run_checks(b.entries, model, ["idempotency", "outcome"])
    run_checks(b.entries, model, ["idempotency", "contracts"])
    run_checks(b.entries, model)  # every checker, contracts included
    assert asked == [False, True, True]


def test_the_checker_refuses_an_index_built_without_events():
    b = HistoryBuilder()
    _authorized(b, "s1")
    with pytest.raises(ValueError, match="keep_events=True"):
        check(build_index(b.entries, reference_model()), reference_model())


def test_contracts_is_a_default_and_registered_checker():
    assert "contracts" in DEFAULT and checkers()["contracts"] is check
