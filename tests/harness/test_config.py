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
