# One target per habit. `make test` is what CI runs (see README.md).
PY ?= python

.PHONY: install up lint typecheck test bench schemas

install:
	$(PY) -m pip install -q -e '.[dev]'
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)
	journeylens stack fetch
	npm --prefix sdk/browser ci --no-audit --no-fund
	npm --prefix sdk/browser run build

up: install
	journeylens up

lint:
	ruff check services tests
	ruff format --check services tests

typecheck:
	mypy services

test: install
	$(PY) -m pytest

bench:
	command -v wrk >/dev/null || (apt-get update -q && apt-get install -y -q wrk)
	journeylens bench collector
	journeylens bench worker
	journeylens bench api
	journeylens bench detection

schemas:
	journeylens schemas export
