# Two entry points, both safe on a fresh machine with Python 3.11 and Java 17:
#   make demo   set up, generate demo data and run the pipeline locally
#   make test   set up, check lint, formatting and types, and run the test suite
#               (the Airflow DAG's test too, in .venv-airflow)
PYTHON ?= python3.11
VENV := .venv
# The Airflow DAG's own environment (airflow-test, below).
AIRFLOW_VENV := .venv-airflow
STAMP := $(VENV)/.installed

.PHONY: setup demo lint test test-fast clean airflow-test

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
	./spark-submit.sh pipeline --config conf/demo.yaml

# Zero findings or the build fails: lint, formatting, and types of the library.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# The suite in two worker processes, each with its own Spark session: tests on tiny
# frames keep about one core busy, so two of them keep a 2-core machine busy. A module
# stays on one worker (its fixtures are built once); conftest.py starts the long
# modules first.
PYTEST := $(VENV)/bin/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder

# The suite, and beside it the Airflow DAG's test in its own environment (below): the
# DAG's tasks run one at a time and leave part of a core the suite's workers use. On a
# fresh machine that environment is installed beside the suite too (mostly downloads),
# so the suite does not wait for it. The DAG test's output follows the suite's; either
# failing fails the target.
test: lint
	@mkdir -p $(AIRFLOW_VENV); \
	$(MAKE) --no-print-directory airflow-test > $(AIRFLOW_LOG) 2>&1 & dag=$$!; \
	$(PYTEST); suite=$$?; \
	wait $$dag; flow=$$?; \
	echo "--- make airflow-test (ran beside the suite):"; cat $(AIRFLOW_LOG); \
	test $$suite -eq 0 && test $$flow -eq 0

test-fast: $(STAMP)
	$(PYTEST) -m "not slow"

# The Airflow DAG (orchestration/airflow) under a real Airflow 3, in an environment of
# its own, .venv-airflow, as an Airflow deployment has no precis: its tasks spark-submit
# the jobs with .venv. Rebuilt only when the pins change, like .venv.
AIRFLOW_PINS := orchestration/airflow/requirements.txt orchestration/airflow/constraints.txt
AIRFLOW_LOG := $(AIRFLOW_VENV)/last-test.log
$(AIRFLOW_VENV)/.installed: $(AIRFLOW_PINS)
	test -x $(AIRFLOW_VENV)/bin/python || $(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet --upgrade "pip==25.3"
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet -r orchestration/airflow/requirements.txt -c orchestration/airflow/constraints.txt
	touch $@

airflow-test: $(STAMP) $(AIRFLOW_VENV)/.installed
	$(AIRFLOW_VENV)/bin/python -m pytest tests/airflow

clean:
	rm -rf lakehouse mlflow spark-warehouse
