# Two commands on a fresh machine: `make run` (set up, then the main job) and `make test` (set up, then tests).
# Both create .venv if it is missing. The CPU build of PyTorch is installed first, so that no dependency
# pulls a multi-GB CUDA build; elsewhere, point pip at the CPU wheels, e.g.
#   make setup PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: setup run full test test-cluster fuzz lint bench clean notebooks

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $@

run: setup  ## every experiment with small budgets, one run directory, report.html (<= 10 min on 2 cores)
	$(BIN)/dlrl run --quick

full: setup  ## every experiment at the issue targets' budgets
	$(BIN)/dlrl run

TEST_WORKERS ?= 2
# The tests start ~40 Python processes that import dlrl; with PYTHONDONTWRITEBYTECODE set (as on the CI image),
# each compiled dlrl's modules again (~0.5 CPU s) and each pytest worker its test modules. Caches are gitignored.
TEST_ENV := PYTHONDONTWRITEBYTECODE=
test: setup  ## the test suite but the cluster's: two pytest-xdist workers (the suite is CPU-bound; a third cost 30-50 CPU s more on 2 cores), the tests that start Ray one after another on one of them
	$(TEST_ENV) $(BIN)/python -m pytest -q -n $(TEST_WORKERS) -m "not cluster"

test-cluster: setup  ## the tests on a real three-node Ray cluster on this machine (a few minutes; CI runs them after `make test`)
	$(TEST_ENV) $(BIN)/python -m pytest -q -m cluster tests/cluster

FUZZ_SCALE ?= 40
fuzz: setup  ## the fuzzers of every reader of outside input with FUZZ_SCALE x the suite's examples; prints the count
	DLRL_FUZZ=1 DLRL_FUZZ_SCALE=$(FUZZ_SCALE) $(BIN)/python -m pytest -q -p no:cacheprovider --timeout=0 tests/fuzz

$(VENV)/.notebooks: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[notebooks]"
	@touch $@

notebooks: $(VENV)/.notebooks  ## the three notebooks at full budget: runs/notebooks-<time>/<name>.html beside their runs
	$(BIN)/python notebooks/execute.py

BENCH_ARGS ?=
bench: setup  ## every benchmark beside its reference (21 min on 2 AVX2 cores, measured) -> bench/results/
	@$(BIN)/python -c "import stable_baselines3" 2>/dev/null || $(BIN)/python -m pip install --quiet -e ".[bench]" \
		|| echo "bench: the [bench] extra did not install; the rows that need it are skipped, with the reason"
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

lint: setup
	$(BIN)/ruff check src tests bench notebooks
	$(BIN)/ruff format --check src tests bench notebooks

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .ruff_cache
