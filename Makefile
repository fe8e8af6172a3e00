# Everything a fresh clone needs: Python 3.11 and make. Targets create .venv on first use.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# OpenMP threads that spin while they wait starve each other on a busy 2-core machine: torch ran
# DDIM steps 30-60x slower with the default policy than with PASSIVE (docs/watermark.md, "Cost").
# Scheduling only: results are the same. Set OMP_WAIT_POLICY=ACTIVE to override on a quiet machine.
OMP_WAIT_POLICY ?= PASSIVE
export OMP_WAIT_POLICY

.PHONY: demo test lint bench install install-dev clean browser-deps screenshots train

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

test: $(DEV_STAMP) browser-deps
	$(BIN)/python -m pytest -q -p no:cacheprovider

# The dashboard's end-to-end test drives Debian's chromium (never a downloaded browser).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	  else echo "make test: the browser test needs Debian's chromium: sudo apt-get install chromium" >&2; exit 1; fi; }

# Refresh the README's dashboard screenshots over the real demo run (run `make demo` first).
screenshots: $(DEV_STAMP) browser-deps
	$(BIN)/python docs/make_screenshots.py

# Retrain every embedded model from scratch on this machine (about an hour on 2 CPU cores; add
# TRAIN_ARGS="--device cuda" on a GPU) into runs/train/models; a killed run resumes. Check
# runs/train/models/metrics.json, then copy clip/ aesthetic/ watermark/ sd/ metrics.json to models/.
TRAIN := runs/train
train: $(STAMP)
	@test -d $(TRAIN)/world || $(BIN)/t2iscope world make --out $(TRAIN)/world --rows 30000 --seed 0
	@test -d $(TRAIN)/heldout || $(BIN)/t2iscope world make --out $(TRAIN)/heldout --rows 2000 --seed 1
	@test -f $(TRAIN)/curated/stats.json || \
	  $(BIN)/t2iscope curate run models/curate-sd-train.yaml --input $(TRAIN)/world --out $(TRAIN)/curated
	$(BIN)/t2iscope generate train all --world $(TRAIN)/world --curated $(TRAIN)/curated \
	  --heldout $(TRAIN)/heldout --out $(TRAIN)/models $(TRAIN_ARGS)
	$(BIN)/t2iscope generate train sheet --models $(TRAIN)/models --png $(TRAIN)/contact_sheet.png

lint: $(DEV_STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(STAMP)
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache
