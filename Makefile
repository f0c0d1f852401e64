# Touchpoint. `make run` serves on http://127.0.0.1:8000 with SQLite; `make test` runs every test;
# `make stress` runs the minutes-long process tests (tests/stress, docs/reliability.md).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install run test stress bench lint

install: $(STAMP)

# Reinstalls only when pyproject.toml changed (the project itself is installed editable).
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

run: install
	@$(VENV)/bin/touchpoint db upgrade
	@$(VENV)/bin/touchpoint serve --host 127.0.0.1 --port 8000 --workers 2

test: install
	@$(PY) -m pytest $(PYTEST_ARGS)

stress: install
	@$(PY) -m pytest -m stress tests $(PYTEST_ARGS)

bench: install
	@command -v wrk >/dev/null || { echo "installing Debian's wrk for the redirect figures"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	@$(PY) -m bench $(BENCH_ARGS)
