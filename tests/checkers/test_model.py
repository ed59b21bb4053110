"""The model's validation: each piece of evidence names one source, messages say which keys go
together, misspelt keys get a "did you mean", and no message carries pydantic's "Value error,"."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from saga_harness.model import SagaModel, TriggerExpectation
from saga_harness.models import ModelError, load_model, reference_model


def error(data, triggers=None) -> ModelError:
    with pytest.raises(ModelError) as info:
        load_model(data, triggers)
    assert "Value error" not in str(info.value)
    return info.value


def step(**done):
    return {"steps": [{"name": "pay", "done": done}]}


@pytest.mark.parametrize(
    ("done", "says"),
    [
        ({"event": "paid", "answer": "checkout"}, "exactly one source (got `event` and `answer`)"),
        ({"state": "PAID", "states": ["PAID"]}, "give `state` (one state) or `states`"),
        ({"pointer": "/paid"}, "exactly one source. Sources: `event` = TYPE"),
        ({"event": "paid", "text": "re:ok"}, "`text` goes with `answer` or `read`, not with `event`"),
        ({"answer": "checkout", "saga_id": "/id"}, "`saga_id` goes with `event`, not with `answer`"),
        ({"state": "PAID", "status": 200}, "`status` goes with `answer` or `read`, not with `state`"),
        ({"read": "order", "equals": True}, "`equals` / `in` test the value at `pointer`: give `pointer` too"),
        ({"read": "order", "pointer": "/paid", "equals": True, "in": [True]}, "give `equals` (one value) or `in`"),
        ({"answer": "checkout", "text": "re:(unclosed"}, "is not a valid regular expression"),
        ({"read": "order", "pointer": "paid", "equals": True}, 'not a JSON pointer: pointers start with "/"'),
        ({"state": "PAID", "at": "/at"}, "`at` goes with `event` or `answer` or `read`, not with `state`"),
    ],
)
def test_which_keys_go_together(done, says):
    exc = error(step(**done))
    assert exc.lines[0][0] == "model.steps.0.done"
    assert says in exc.lines[0][1], exc.lines


@pytest.mark.parametrize(
    ("data", "path", "hint"),
    [
        ({"stepz": []}, "model.stepz", "did you mean 'steps'?"),
        (step(event="paid", wher={}), "model.steps.0.done.wher", "did you mean 'where'?"),
        (step(answer="checkout", stauts=200), "model.steps.0.done.stauts", "did you mean 'status'?"),
        ({"states": {"termnal": {}}}, "model.states.termnal", "did you mean 'terminal'?"),
        ({"quantities": [{"name": "q", "plus": [{"event": "e", "vaule": "/x"}]}]}, None, "did you mean 'value'?"),
    ],
)
def test_misspelt_keys_get_a_did_you_mean(data, path, hint):
    exc = error(data)
    if path is not None:
        assert exc.lines[0][0] == path
    assert any(hint in msg for _p, msg in exc.lines), exc.lines


def test_a_misspelt_source_is_named():
    exc = error(step(evnt="paid"))
    assert "`evnt` is not a key — did you mean 'event'?" in str(exc)


def test_a_misspelt_key_is_named_where_it_is_why_others_do_not_go_together():
    exc = error(step(read="hold", pointr="/status", equals="released"))
    assert "give `pointer` too" in str(exc) and "`pointr` is not a key — did you mean 'pointer'?" in str(exc)


def test_a_trigger_is_not_judged_against_steps_that_are_wrong_themselves():
    exc = error({"steps": [{"name": "pay"}]}, {"t": {"outcome": "compensated", "fails_at": "pay"}})
    assert [p for p, _m in exc.lines] == ["model.steps.0.done"]


def test_triggers_from_the_config_are_reported_under_triggers():
    exc = error(step(event="paid"), {"poor": {"outcome": "compensated", "fails_at": "paymnt"}})
    assert "fails_at = 'paymnt' is not a step — did you mean 'pay'?" in str(exc)
    exc = error({}, {"poor": {"outcome": "complete"}})
    assert exc.lines == [
        (
            "triggers.poor",
            "`outcome`: 'complete' is not an outcome; outcomes: completed, compensated, failed, any — "
            "did you mean 'completed'?",
        )
    ]
    exc = error({}, {"poor": {"outcome": "completed", "fails_at_step": "pay"}})
    assert exc.lines[0] == ("triggers.poor.fails_at_step", "unknown key — did you mean 'fails_at'?")
    exc = error({"triggers": {"own": {"outcome": "x"}}})
    assert exc.lines[0][0] == "model.triggers.own"


def test_a_trigger_that_fails_somewhere_cannot_demand_completed():
    exc = error(step(event="paid"), {"t": {"outcome": "completed", "fails_at": "pay"}})
    assert "cannot demand outcome completed" in str(exc)


def test_model_errors_are_value_errors_carrying_pydantics():
    exc = error({"balances": [{"name": "b", "service": "s", "quantity": "q"}]})
    assert isinstance(exc, ValueError) and isinstance(exc.validation_error, ValidationError)
    assert str(exc) == "[model.balances.0] balance 'b': give `value` (one number) or `items` + `key` + `plus`"


def test_a_quantity_term_needs_a_number():
    exc = error({"quantities": [{"name": "q", "plus": [{"state": "PAID", "value": "/x"}]}]})
    assert "the status history has none" in str(exc)
    exc = error({"quantities": [{"name": "q", "plus": [{"event": "e", "value": "re:(\\d+)"}]}]})
    assert "an event term's `value` is a JSON pointer" in str(exc)


def test_trigger_expectations_take_every_shape():
    assert TriggerExpectation.model_validate("completed").outcome == ("completed",)
    assert TriggerExpectation.model_validate({"outcome": "any"}).outcome == ("completed", "compensated", "failed")
    t = TriggerExpectation.model_validate(
        {"outcome": ["compensated", "completed"], "under_faults": None, "fails_at": None, "reason": None}
    )
    assert t.outcome == ("completed", "compensated") and t.accepted(True) == t.outcome
    assert t.describe() == "one of completed, compensated"


def test_steps_are_optional_and_the_reference_model_is_unchanged():
    assert load_model({}).steps == []
    ref = reference_model()
    assert [s.name for s in ref.steps][:3] == ["create_order", "fraud_check", "authorize_payment"]
    assert all(m.source == "event" for _r, _n, m in ref.evidence())
    assert set(ref.matches()) >= {"com.sagashop.order.created", "com.sagashop.payment.refunded"}
    assert ref.triggers["scarce"].outcome == ("completed", "compensated", "failed")


def test_a_model_dumped_and_validated_again_is_the_same():
    model = load_model(
        {
            "steps": [
                {
                    "name": "a",
                    "done": {"answer": "c", "status": 200},
                    "undone": {"read": "r", "pointer": "/s", "equals": None},
                },
                {"name": "b", "done": {"state": None}},
            ]
        },
        {"t": {"outcome": ["completed", "failed"], "reason": "re:x"}},
    )
    assert SagaModel.model_validate(model.model_dump(by_alias=True)) == model
    assert SagaModel.model_validate(model.model_dump()) == model
