# The front door. `make reports` and `make test` work on a fresh machine:
# each bootstraps .venv at the repo root when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SEED ?= 20190401
WORLD ?= data/raw/synthetic
JOBS ?= 2

.PHONY: help venv test test-fast reports synth lab benchmarks clean clean-reports fixtures-r

help:
	@echo "make reports     build every programme report from the synthetic world (generated if absent)"
	@echo "make test        run the test suite"
	@echo "make synth       (re)generate the synthetic world in $(WORLD)"
	@echo "make lab         JupyterLab with the 'evaluation' kernel"
	@echo "make benchmarks  run the speed benchmarks (national scale; minutes)"

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name evaluation --display-name "Python (evaluation)" >/dev/null
	$(PY) -m evaluation.matching --warm
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

$(WORLD)/people.csv: | $(STAMP)
	$(PY) -m evaluation synth --seed $(SEED) --out $(WORLD)

synth: $(STAMP)
	$(PY) -m evaluation synth --seed $(SEED) --out $(WORLD)

reports: $(STAMP) $(WORLD)/people.csv
	$(PY) -m evaluation build --world $(WORLD) --jobs $(JOBS)
	$(PY) -m evaluation portfolio

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks

benchmarks: $(STAMP)
	$(PY) benchmarks/outcomes.py
	$(PY) benchmarks/matching.py
	$(PY) benchmarks/reports.py

# Regenerate the R reference fixtures (needs R with survival, sandwich, lmtest, jsonlite, and MatchIt 4.7.2
# for the matching ones; CI does not need R: it reads the fixtures).
fixtures-r:
	cd tests/results/survival && Rscript make_survival_reference.R && Rscript make_survival_reference2.R
	cd tests/results/area && Rscript its_r.R
	cd tests/results/matchit && Rscript make_reference.R && Rscript make_more_reference.R

clean-reports:
	rm -rf reports/*/ reports/index.html reports/manifest.json

clean: clean-reports
	rm -rf $(VENV) .pytest_cache
