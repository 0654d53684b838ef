# One target per habit. `make test` is what CI runs (see README.md).
PY ?= python

.PHONY: install lint typecheck test bench schemas

install:
	$(PY) -m pip install -e '.[dev]'
	mvn -q -f infra/kafka/pom.xml dependency:copy-dependencies
	npm --prefix sdk/browser ci
	npm --prefix sdk/browser run build

lint:
	ruff check services tests
	ruff format --check services tests

typecheck:
	mypy services

test:
	pytest

bench:
	journeylens bench collector
	journeylens bench worker
	journeylens bench api

schemas:
	journeylens schemas export
