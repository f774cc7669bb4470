PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint bench bench-pg bench-load clean

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

# The loop while working: SQLite only, without the browser journeys (every test that uses the
# `browser` fixture or lives in a *_browser.py module) and the tests marked slow (the demo data of
# every pack, fuzzing, real processes); `make test` runs all of them and every PostgreSQL case.
test-fast: $(STAMP)
	$(BIN)/ruff check builder runtime tests benchmarks tools
	$(BIN)/python -m pytest -q -n 2 -m "not slow and not postgres and not browser" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check builder runtime tests benchmarks tools

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run
	$(BIN)/python -m benchmarks.demo_install
	$(BIN)/python -m benchmarks.bulk_import
	$(BIN)/python -m benchmarks.search

# Many signed-in users against `crmforge serve` on PostgreSQL and Redis: users 1, 2, 4, 8, 16 on 1
# then 2 processes, 20 s each, and the knee (benchmarks/load.py; about 5 minutes on an idle
# machine; CRMFORGE_BENCH_POSTGRES, CRMFORGE_BENCH_REDIS; a short try that writes nothing:
# LOAD_ARGS="--seconds 5 --sweep 1,4 --no-compare --no-report").
bench-load: $(STAMP)
	$(BIN)/python -m benchmarks.load $(LOAD_ARGS)

# The list, deep page, filter and search benchmarks on PostgreSQL: an empty database in
# CRMFORGE_BENCH_DATABASE_URL (its tables are reset); BENCH_PG_ROWS rows (the issue's figure is
# 10,000,000; docs/performance.md says what was run). BENCH_ARGS=--no-write prints only.
# Its public schema is emptied before each benchmark.
BENCH_PG_ROWS ?= 1000000
RESET_PG = $(BIN)/python -c "import sys; from runtime.core.db import make_engine; c = make_engine(sys.argv[1]).connect(); \
	c.exec_driver_sql('DROP SCHEMA public CASCADE; CREATE SCHEMA public'); c.commit()" \
	"$(CRMFORGE_BENCH_DATABASE_URL)"
bench-pg: $(STAMP)
	@test -n "$(CRMFORGE_BENCH_DATABASE_URL)" || \
		{ echo "set CRMFORGE_BENCH_DATABASE_URL=postgresql://user@host/db (an empty database)"; exit 2; }
	$(RESET_PG)
	$(BIN)/python -m benchmarks.run --rows $(BENCH_PG_ROWS) --database-url "$(CRMFORGE_BENCH_DATABASE_URL)" $(BENCH_ARGS)
	$(RESET_PG)
	$(BIN)/python -m benchmarks.search --rows $(BENCH_PG_ROWS) --database-url "$(CRMFORGE_BENCH_DATABASE_URL)" $(BENCH_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache
