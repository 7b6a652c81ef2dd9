# The front door. `make reports` and `make test` work on a fresh machine:
# each bootstraps .venv at the repo root when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# the numba kernels compiled and the ahead-of-time module of the default matching path built (again when their
# source changes; `kernels` also rebuilds a missing module); see src/evaluation/matching/_kernels.py
KERNELS := $(VENV)/.kernels
SEED ?= 20190401
WORLD ?= data/raw/synthetic
JOBS ?= 2

.PHONY: help venv kernels test test-fast reports synth lab benchmarks clean clean-reports fixtures-r browser-setup

help:
	@echo "make reports     build every programme report from the synthetic world (generated if absent)"
	@echo "make test        run the test suite"
	@echo "make synth       (re)generate the synthetic world in $(WORLD)"
	@echo "make lab         JupyterLab with the 'evaluation' kernel"
	@echo "make benchmarks  run the speed benchmarks (national scale; minutes)"

venv: kernels

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@# ipykernel's install removes the kernel spec it staged, not the temporary folder around it: stage it here
	@mkdir -p $(VENV)/.tmp
	TMPDIR=$(CURDIR)/$(VENV)/.tmp $(PY) -m ipykernel install --sys-prefix --name evaluation \
		--display-name "Python (evaluation)" >/dev/null
	@rm -rf $(VENV)/.tmp
	@touch $(STAMP)

$(KERNELS): $(STAMP) src/evaluation/matching/_nn.py src/evaluation/matching/_nn_general.py \
		src/evaluation/matching/_kernels.py
	$(PY) -m evaluation.matching --warm
	@touch $(KERNELS)

# every run: the ahead-of-time module again if it is gone (deleted, or numba / the CPU changed); a no-op when there
kernels: $(KERNELS)
	@$(PY) -m evaluation.matching --aot-if-missing

# The accessibility test (tests/test_accessibility.py) runs axe-core in headless Chromium: Debian's chromium
# package and axe-core from npm (tests/browser/package-lock.json). Installed once; a no-op when present. Under
# `make test` the browser tests fail, never skip, when either is missing (EVALUATION_BROWSER_TESTS=1).
CHROMIUM ?= /usr/bin/chromium
AXE := tests/browser/node_modules/axe-core/axe.min.js
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

browser-setup: $(CHROMIUM) $(AXE)

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

$(AXE): tests/browser/package.json tests/browser/package-lock.json
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

test: kernels browser-setup
	EVALUATION_BROWSER_TESTS=1 $(PY) -m pytest

test-fast: kernels
	$(PY) -m pytest -m "not slow"

$(WORLD)/people.csv: | $(STAMP)
	$(PY) -m evaluation synth --seed $(SEED) --out $(WORLD)

# the providers' referral lists and the nominal index (names) that `link` reads; a world written before them is
# regenerated (same seed, same world)
$(WORLD)/linkage/nominal_index.csv: | $(STAMP)
	$(PY) -m evaluation synth --seed $(SEED) --out $(WORLD)

synth: kernels
	$(PY) -m evaluation synth --seed $(SEED) --out $(WORLD)

reports: kernels $(WORLD)/people.csv $(WORLD)/linkage/nominal_index.csv
	$(PY) -m evaluation link --world $(WORLD) --out data/processed/linked
	$(PY) -m evaluation build --world $(WORLD) --linked data/processed/linked --jobs $(JOBS)
	$(PY) -m evaluation portfolio

lab: kernels
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks

benchmarks: kernels
	$(PY) benchmarks/outcomes.py
	$(PY) benchmarks/matching.py
	$(PY) benchmarks/reports.py
	$(PY) benchmarks/linkage.py

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
