# spineaug: every target that runs code depends on `install`, so `make test` alone works on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test test-fast benchmark bench-quick study report asv preview clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e '.[dev]'
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow"

benchmark: install
	$(BIN)/spineaug bench --out results/bench
	$(BIN)/spineaug report --results results --out reports

bench-quick: install
	$(BIN)/spineaug bench --quick --out results/bench

study: install
	$(BIN)/spineaug study --out results/study

report: install
	$(BIN)/spineaug report --results results --out reports

asv: install
	$(BIN)/asv run --python=same --quick --show-stderr
	$(BIN)/asv publish

preview: install
	$(BIN)/spineaug preview --preset xdomain --out reports/gallery.png

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis results .asv
