# Everything a fresh clone needs: Python 3.11 and make. Targets create .venv on first use.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint bench install install-dev clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# invisible-watermark goes in with --no-deps: its opencv-python and albumentations'
# opencv-python-headless write the same cv2/ folder, so only the headless one is installed.
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) install -q -c constraints.txt -e .
	$(PIP) install -q -c constraints.txt --no-deps invisible-watermark
	@touch $@

$(DEV_STAMP): $(STAMP)
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	@touch $@

install: $(STAMP)
install-dev: $(DEV_STAMP)

demo: $(STAMP)
	$(BIN)/python -m t2iscope.demo

test: $(DEV_STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: $(DEV_STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(STAMP)
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache
