# Two commands set everything up on a fresh machine: `make test` and `make bench`.
# Both create .venv on first use and install the project into it; the test targets add
# its test extras (pytest, Hypothesis, the notebook runner, the browser driver), which a
# bench run does not need.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
TEST_STAMP := $(VENV)/.installed-test-stamp
BENCH_ARGS ?=

.PHONY: all test faults bench bench-quick bench-full microbench venv clean report compare notebook docs docs-check

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

venv: $(TEST_STAMP)

test: $(TEST_STAMP)
	$(PY) -m pytest

# The fault suite at full size: 2,000 stalled connections, a 60 s churn soak per model,
# 200 bad streams per model (`make test` runs the same tests smaller).
# Each attack test records what it measured in results/faults/faults.json (one sitting:
# the old file goes first); the README's fault table is generated from it (`make docs`).
faults: $(TEST_STAMP)
	rm -f results/faults/faults.json
	IOMODELS_FAULTS=full $(PY) -m pytest tests/faults/

bench: $(STAMP)
	$(PY) -m bench run --profile default $(BENCH_ARGS)

bench-quick: $(STAMP)
	$(PY) -m bench run --profile quick $(BENCH_ARGS)

bench-full: $(STAMP)
	$(PY) -m bench run --profile full $(BENCH_ARGS)

# Redraw charts/, REPORT.md and report.html of a stored run: make report RUN=results/<run-id>
report: $(STAMP)
	@test -n "$(RUN)" || { echo "usage: make report RUN=results/<run-id>"; exit 2; }
	$(PY) -m bench report $(RUN)

# Two runs point by point (ratio chart, compare.md, compare.html): make compare A=... B=...
compare: $(STAMP)
	@test -n "$(A)" -a -n "$(B)" || { echo "usage: make compare A=results/<run> B=results/<run>"; exit 2; }
	$(PY) -m bench compare $(A) $(B)

# Execute notebooks/analysis.ipynb in place on the newest run (or the committed reference)
notebook: $(TEST_STAMP)
	$(PY) -m bench.report.notebook

microbench: $(TEST_STAMP)
	mkdir -p results/microbench
	$(PY) -m pytest benchmarks --benchmark-enable --benchmark-only \
		--benchmark-json=results/microbench/microbench.json -p no:cacheprovider

# Every figure in README.md, docs/*.md and bench/README.md, rewritten from the committed
# artifacts into the docs' marked sections (bench/docs/); `make docs-check` changes nothing
# and fails when a doc is out of date.
docs: $(STAMP)
	$(PY) -m bench.docs

docs-check: $(STAMP)
	$(PY) -m bench.docs --check

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
