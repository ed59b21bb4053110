# saga-harness: two commands for a newcomer — `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test calibration bench lint clean screenshot

install: $(STAMP)

# Re-installs only when pyproject.toml or the tested versions change; a no-op otherwise.
# constraints.txt pins every package to the version this project is tested with;
# pyproject.toml itself declares compatible ranges (what a user's install resolves).
$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=/path/to/python3.11'" >&2; exit 2; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

demo: install
	$(BIN)/saga-harness demo

# Two workers: most tests wait on real processes; front ends are tested on the in-process fake
# SUT. (pytest-xdist 3.8 cannot group tests under pytest 9 — it renames node ids, which pytest 9
# no longer reads — so every test spreads over both workers.) The slowest tests are listed last.
# The quick calibrations are not here: `make calibration`, which .ci/run runs after this.
test: install
	$(BIN)/python -m pytest -q -n 2 --durations=15

# The quick calibrations (about 5 minutes): `calibrate --quick` on the reference system (every catalogue
# scenario clean, every seeded bug through its runs), on the worked examples and under contention. .ci/run runs it after
# `make test`; the full calibration is in `make bench`.
calibration: install
	$(BIN)/python -m pytest -q -n 2 -m calibration --durations=5

# Every bench/bench_*.py, results in bench/results/ (or the ones named: make bench BENCH="soak determinism").
# The soak (2,500 sagas and 40 faults, quiet and with two busy processes on the cores, ~12 min) and the
# determinism runs (20 runs of one seed, ~15 min) are here and never in `make test`.
bench: install
	$(BIN)/python -m bench $(BENCH)

# The README's picture of a report (docs/report.png): a hand-built run's report.html, photographed
# at 1280 px by headless Chromium (apt-get install chromium; no `playwright install`).
screenshot: install
	$(BIN)/python -m saga_harness.reports.screenshot --out docs/report.png

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) runs build dist *.egg-info
