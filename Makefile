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

# The demo: a workspace per industry (core + that vertical, with its demo data), the chooser at
# http://127.0.0.1:5000/, the workers running beside the server (in the same process: scheduled
# automations happen while someone looks; docs/cli.md, crmforge demo --workspaces).
demo: $(STAMP)
	$(BIN)/crmforge demo --workspaces

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
	$(BIN)/python -m benchmarks.bulk_import
	$(BIN)/python -m benchmarks.search

clean:
	rm -rf $(VENV) instance .pytest_cache
