# One-command set-up: every target that needs the venv builds it first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup test unit integration lint demo bench clean

# plotly.js's basic bundle (1.2 MB) inlined by the offline HTML report: fetched from npm, never kept in git.
PLOTLY_BASIC := astrachaos/reports/vendor/plotly-basic.min.js
PLOTLY_NPM   := plotly.js-basic-dist-min@4.1.1

$(PLOTLY_BASIC):
	tmp=$$(mktemp -d) && cd $$tmp && npm pack -q $(PLOTLY_NPM) >/dev/null \
	  && tar xzf *.tgz package/plotly-basic.min.js && cd - >/dev/null \
	  && mv $$tmp/package/plotly-basic.min.js $@ && rm -rf $$tmp

$(STAMP): pyproject.toml $(PLOTLY_BASIC)
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	ASTRACHAOS_PURE_PYTHON=1 $(BIN)/pip install -q -e '.[dev]'  # nothing compiled in place (setup.py)
	touch $(STAMP)

setup: $(STAMP)  ## venv in .venv, editable install with dev extras

test: $(STAMP)  ## every test; the fixtures provision the jars and start the local node themselves
	$(BIN)/pytest tests

unit: $(STAMP)
	$(BIN)/pytest tests/unit

lint: $(STAMP)
	$(BIN)/ruff check astrachaos tests bench
	$(BIN)/mypy astrachaos
	$(BIN)/lint-imports  ## the layers and no-cycles contracts of pyproject.toml

demo: $(STAMP)  ## the headline: silent loss under a client queue overflow, against a local node
	$(BIN)/astrachaos run queue-overflow

bench: $(STAMP)  ## engine vs raw-driver ratios, medians of several runs; then proxy, reconcile, capture
	$(BIN)/astrachaos local up --nodes 1
	$(BIN)/python -m bench
	$(BIN)/python -m bench.placement
	$(BIN)/python -m bench.raw_baselines
	$(BIN)/python -m bench.proxy 50000
	$(BIN)/python -m bench.proxy_modes 20000 5
	$(BIN)/python -m bench.reconcile_bench 1000000
	$(BIN)/python -m bench.capture_proxy 1000000 20000
	$(BIN)/python -m bench.capture_hot_path 100000

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache runs
