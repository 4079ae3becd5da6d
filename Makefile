# Two commands do all the set-up (see README.md):
#   make lab    create .venv if missing, install the course, open JupyterLab on notebook 00
#   make test   the same install, then lint, unit tests and every notebook (fast mode, offline)
# A second run reuses .venv: it reinstalls only when requirements*.txt or pyproject.toml changed.
# It installs both requirements.txt (run time) and requirements-dev.txt (JupyterLab, test tools).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Tests and CI read the data sets from ../shared/datasets when it is there (no download).
SHARED_DATASETS := $(abspath ../shared/datasets)
ifneq ($(wildcard $(SHARED_DATASETS)),)
export COURSE_DATA_MIRROR ?= $(SHARED_DATASETS)
endif

# JupyterLab refuses to start as root (CI, containers) unless told it may.
LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root)
NBVAL    := --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg \
            --nbval-cell-timeout=900 --nbval-kernel-startup-timeout=120

.PHONY: install lab test test-unit test-notebooks lint notebooks assign clean-notebooks benchmark site

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	$(BIN)/python -m pip install --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# The lab opens on notebook 00 (also the address it prints), and with tools/lab/overrides.json
# as its settings defaults: no prompt about Jupyter news, no update check (the course is pinned).
LAB_START := 00_setup_and_tour.ipynb
lab: install
	$(BIN)/jupyter lab --notebook-dir=notebooks --LabApp.default_url=/lab/tree/$(LAB_START) \
	  --LabApp.app_settings_dir=$(CURDIR)/tools/lab $(LAB_ARGS)

lint: install
	$(BIN)/ruff check course_utils tests tools $(wildcard benchmarks)

test-unit: install
	$(BIN)/python -m pytest tests

# Fast mode (COURSE_FAST=1): every notebook, solutions included, on small real subsets.
test-notebooks: install
	COURSE_FAST=1 $(BIN)/python -m pytest $(NBVAL) notebooks

test: lint test-unit test-notebooks

# Full mode: re-run the sources (the solutions notebooks) to refresh the outputs a learner reads,
# then generate the student notebooks from them (NB=notebooks/solutions/07_*.ipynb for one).
NB ?= notebooks/solutions/*.ipynb
notebooks: install
	for nb in $(NB); do \
	  $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=3600 --ExecutePreprocessor.kernel_name=python3 "$$nb" || exit 1; \
	done
	$(BIN)/python tools/clean_notebooks.py $(NB)
	$(BIN)/python tools/assign.py

# The student notebooks from their sources (otter-grader); ASSIGN_ARGS="--autograder grading"
# also writes the zips an instructor grades with (INSTRUCTORS.md).
assign: install
	$(BIN)/python tools/assign.py $(ASSIGN_ARGS)

clean-notebooks: install
	$(BIN)/python tools/clean_notebooks.py $(NB)

benchmark: install
	$(BIN)/python benchmarks/finetune_hymenoptera.py

# The course website from the stored notebooks (not re-run), solutions left out: site/_build/html.
site: install
	$(BIN)/python tools/build_site.py
