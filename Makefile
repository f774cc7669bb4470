PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

# The demo instance, served, with the worker running beside the server (in the same process:
# scheduled automations happen while someone looks; docs/cli.md, crmforge demo).
demo: $(STAMP)
	$(BIN)/crmforge demo

test: $(STAMP)
	$(BIN)/ruff check builder runtime tests benchmarks tools
	$(BIN)/python -m pytest -q -n 2 $(PYTEST_ARGS)

# The loop while working: SQLite only, without the tests marked slow (the demo data of every
# pack, fuzzing); `make test` runs those and every PostgreSQL case too.
test-fast: $(STAMP)
	$(BIN)/ruff check builder runtime tests benchmarks tools
	$(BIN)/python -m pytest -q -n 2 -m "not slow and not postgres" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check builder runtime tests benchmarks tools

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run
	$(BIN)/python -m benchmarks.demo_install

clean:
	rm -rf $(VENV) instance .pytest_cache
