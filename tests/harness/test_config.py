"""The declarative SUT description: validated fully on load, with errors that teach."""

from __future__ import annotations

from pathlib import Path

import pytest
from saga_harness.config import find_config, load_config
from saga_harness.durations import parse_duration
from saga_harness.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = """
name = "mini"
[services.api]
command = ["${python}", "-m", "http.server", "${port}"]
[saga.start]
service = "api"
path = "/sagas"
saga_id = "/id"
[saga.status]
service = "api"
path = "/sagas/{saga_id}"
state = "/state"
[saga.terminal]
DONE = "completed"
"""


def write(tmp_path, text, name="saga-harness.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_shipped_descriptions_load():
    for path in ("fixtures/sagashop/saga-harness.toml", "fixtures/tripbook/saga-harness.toml"):
        config = load_config(ROOT / path)
        assert config.services and config.saga.terminal and config.model


def test_minimal_config_and_pyproject_table(tmp_path):
    assert load_config(write(tmp_path, MINIMAL)).name == "mini"
    py = write(
        tmp_path,
        "[tool.saga-harness]\n"
        + MINIMAL.replace("[services", "[tool.saga-harness.services").replace("[saga.", "[tool.saga-harness.saga."),
        name="pyproject.toml",
    )
    (tmp_path / "saga-harness.toml").unlink()
    assert find_config(tmp_path) == py
    assert load_config(py).name == "mini"


@pytest.mark.parametrize(
    "mutate,needles",
    [
        (lambda t: t.replace('path = "/sagas"\n', 'pth = "/sagas"\n'), ["[saga.start.pth] unknown key", "'path'"]),
        (lambda t: t.replace('DONE = "completed"', 'DONE = "finished"'), ["[saga.terminal.DONE]", "'finished'"]),
        (
            lambda t: t.replace('service = "api"\npath = "/sagas/', 'service = "apj"\npath = "/sagas/'),
            ["saga.status.service", "'apj'", "did you mean 'api'"],
        ),
        (
            lambda t: t.replace('command = ["${python}", "-m", "http.server", "${port}"]', ""),
            ["services.api", "give `command`"],
        ),
        (lambda t: t + '\n[[links]]\nsource = "api"\n', ["links.0.target", "Field required"]),
        (lambda t: t.replace('name = "mini"', 'name = "mini'), ["not valid TOML"]),
    ],
)
def test_mistakes_name_the_file_the_key_and_the_fix(tmp_path, mutate, needles):
    path = write(tmp_path, mutate(MINIMAL))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message
    for needle in needles:
        assert needle in message, message


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30.0), ("2m", 120.0), ("500ms", 0.5), ("90", 90.0), (" 1.5 h ", 5400.0), (2, 2.0)]
)
def test_durations_as_people_write_them(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["30 sec", "-1s", "", "1e3", True])
def test_a_bad_duration_names_the_option_and_the_fix(text):
    with pytest.raises(ConfigError, match=r"^--deadline: .* is not a duration; write e\.g\. 30s, 2m or 500ms$"):
        parse_duration(text, "--deadline")


# -- #14: the start as a sequence, pools, typed states, placeholders, the reference -------------

SYSTEMS = ROOT / "tests" / "harness" / "systems"
SEQUENCE = """
name = "shop"
[env]
SHOP_BUGS = ""
[services.api]
command = ["${python}", "-m", "shop", "${port}"]
env = { SINK = "${sink_url}" }
[pools.rich]
kind = "user"
size = 2
values = { credit = 100 }
[[saga.start]]
name = "create_user"
once_per = "user"
service = "api"
path = "/users"
capture = { user_id = "/user_id" }
[[saga.start]]
name = "create_order"
service = "api"
path = "/orders/{user.user_id}"
capture = { order_id = "/order_id" }
saga_id = "order_id"
[[saga.start]]
name = "checkout"
service = "api"
path = "/checkout/{order_id}/{quantity}"
expect = [200, 400]
[saga.resend]
step = "checkout"
[saga.status]
service = "api"
path = "/orders/{saga_id}"
state = "/paid"
during_start = false
[saga.terminal]
true = "completed"
false = "compensated"
[triggers.ok]
outcome = ["completed", "compensated"]
under_faults = ["completed", "compensated", "failed"]
uses = { user = "rich" }
request = { quantity = 1 }
[triggers.plain]
outcome = "completed"
uses = { user = "rich" }
request = { quantity = 2 }
"""


def test_a_start_sequence_with_pools_typed_states_and_the_sink_in_a_services_env(tmp_path):
    config = load_config(write(tmp_path, SEQUENCE))
    assert [s.name for s in config.saga.start] == ["create_user", "create_order", "checkout"]
    assert config.saga.start[0].idempotency_header is None and config.saga.start[0].body is None
    assert config.env == {"SHOP_BUGS": ""} and config.saga.terminal == {"true": "completed", "false": "compensated"}
    assert config.triggers["plain"].expectation() is None and config.triggers["plain"].expected_outcome == "completed"
    assert config.triggers["ok"].expectation() == {
        "outcome": ["completed", "compensated"],
        "under_faults": ["completed", "compensated", "failed"],
        "fails_at": None,
        "reason": None,
        "error_type": None,
    }


USES_OK = 'uses = { user = "rich" }\nrequest = { quantity = 1 }'
PER_SAGAS = '\n[snapshots.per_sagas.x]\nservice = "api"\npath = "/x"\n'


@pytest.mark.parametrize(
    "old,new,needles",
    [
        ('true = "completed"', 'True = "completed"', ["'True' never matches", "did you mean 'true'"]),
        (USES_OK, USES_OK.replace("rich", "ricj"), ["triggers.ok.uses.user", "'ricj'", "did you mean 'rich'"]),
        ('once_per = "user"', 'once_per = "usr"', ["once_per = 'usr'", "did you mean 'user'"]),
        ("/checkout/{order_id}/", "/checkout/{ordr_id}/", ["{ordr_id}", "did you mean 'order_id'"]),
        ('step = "checkout"', 'step = "chekout"', ["[saga.resend]", "did you mean 'checkout'"]),
        ('saga_id = "order_id"', 'saga_id = "order"', ["saga_id = 'order'", "captured"]),
        ('path = "/checkout/', 'pth = "/checkout/', ["[saga.start.2.pth] unknown key", "'path'"]),
        ("${sink_url}", "${sink_ur}", ["[services.api.env] unknown placeholder ${sink_ur}", "'sink_url'"]),
        ("[saga.resend]", PER_SAGAS + "[saga.resend]", ["per_sagas", "did you mean 'per_saga'"]),
    ],
)
def test_sequence_mistakes_name_the_key_and_what_was_meant(tmp_path, old, new, needles):
    assert old in SEQUENCE
    path = write(tmp_path, SEQUENCE.replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message and "Value error" not in message and "[]" not in message
    for needle in needles:
        assert needle in message, message


def test_a_terminal_state_the_model_never_declares_is_refused_with_a_guess(tmp_path):
    text = MINIMAL.replace('DONE = "completed"', 'DONE = "completed"\nFAILD = "failed"')
    text += '\n[[model.steps]]\nname = "a"\ndone = { event = "a.done" }\n[model.states]\ninitial = ["NEW"]\n'
    text += 'terminal = { DONE = "completed", FAILED = "failed" }\n'
    with pytest.raises(
        ConfigError, match=r"'FAILD' is not among the states \[model.states\] declares.*did you mean 'FAILED'"
    ):
        load_config(write(tmp_path, text))


def test_model_mistakes_get_a_did_you_mean_too(tmp_path):
    text = MINIMAL + '\n[[model.steps]]\nname = "a"\ndoen = { event = "a.done" }\n'
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    assert "[model.steps.0.doen] unknown key" in str(err.value) and "'done'" in str(err.value)


def test_the_test_systems_load():
    for name in ("minishop", "hotelbus", "blocking", "lookup"):
        config = load_config(SYSTEMS / f"{name}.toml")
        assert config.saga.start and config.saga.status


def test_every_key_is_documented_and_docs_config_md_is_current():
    from saga_harness.config import reference, undocumented

    assert undocumented() == []
    current = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    assert current == reference(), "docs/config.md is stale: run `saga-harness config reference --out docs/config.md`"
