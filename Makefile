# The two set-up commands of the README: each makes its own virtual environment and installs everything.
VENV ?= .venv
PYTHON ?= python3

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -qq --upgrade pip
	# torch first, pinned: on the CPU build machines this takes the local 2.13.0 CPU wheel.
	# On a GPU box, install your CUDA build of torch 2.13.0 into $(VENV) before running make.
	$(VENV)/bin/pip install -qq "torch==2.13.0"
	$(VENV)/bin/pip install -qq -e ".[test]"
	touch $@

# Debian's chromium, for the test that loads report.html in a headless browser (tests/test_report_html.py).
# Installed only when missing; as root (CI), or set APT="sudo apt-get". Not needed by `launch`.
CHROMIUM ?= /usr/bin/chromium
APT ?= apt-get
$(CHROMIUM):
	DEBIAN_FRONTEND=noninteractive $(APT) update -qq
	DEBIAN_FRONTEND=noninteractive $(APT) install -y -qq chromium > /dev/null
	test -x $@

.PHONY: launch test fast bench chromium
chromium: $(CHROMIUM)  ## install Debian's chromium when it is missing (the test target does this)

launch: $(VENV)/.installed  ## the main job: the curse-of-memory sweep (quick scale) on local Ray into ./results
	$(VENV)/bin/sweep launch curse-of-memory

test: $(VENV)/.installed $(CHROMIUM)  ## ruff, then the whole test suite (real Ray, Parquet and DuckDB; headless Chromium)
	$(VENV)/bin/ruff check --quiet .
	$(VENV)/bin/python -m pytest -q

fast: $(VENV)/.installed  ## the fast lane (no Ray sweep, no subprocess; under 2 minutes): what to run while editing
	$(VENV)/bin/python -m pytest -q -m "not slow"

bench: $(VENV)/.installed  ## the benchmarks under bench/
	$(VENV)/bin/python bench/step_time.py
