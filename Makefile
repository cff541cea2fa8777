# Two entry points, both safe on a fresh machine with Python 3.11 and Java 17:
#   make demo   set up, generate demo data and run the pipeline locally
#   make test   set up, check lint, formatting and types, and run the test suite
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: setup demo lint test test-fast clean

setup: $(STAMP)

# Reinstall only when the pins change. constraints.txt pins every transitive package,
# so a fresh machine resolves exactly what CI tested.
$(STAMP): pyproject.toml constraints.txt
	@command -v java >/dev/null || { echo "Java 17 is required (java not on PATH)" >&2; exit 1; }
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required" >&2; exit 1; }
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade "pip==25.3"
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt -e ".[local,connect,test]"
	touch $(STAMP)

demo: $(STAMP)
	./spark-submit.sh pipeline

# Zero findings or the build fails: lint, formatting, and types of the library.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/python -m pytest

test-fast: $(STAMP)
	$(VENV)/bin/python -m pytest -m "not slow"

clean:
	rm -rf lakehouse mlflow spark-warehouse
