# make run   : install (first time), migrate, seed demo data if empty, serve on http://127.0.0.1:$(PORT)
#              beside the outbox worker that sends the email (Ctrl-C stops both)
# make test  : install with test extras (first time), run the whole suite
# make test-timing : the slow statistical timing tests (tests/timing/; CI runs them after make test)
# make lint  : ruff check and ruff format --check (CI runs it before the tests)
# make bench : search benchmarks, then the admin pages' (not part of the tests)
# make bench-admin : the admin pages only (50,000 advocates, 500,000 participations)
# make wheel : build dist/advocate_portal-*.whl (templates, static files and migrations inside the portal package)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 5000
export FLASK_APP := portal

.PHONY: run test test-timing lint bench bench-admin wheel install install-test clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,postgres]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

run: install
	$(BIN)/flask db upgrade
	$(BIN)/flask lists seed
	$(BIN)/flask demo seed --if-empty
	$(BIN)/flask search sync --no-refresh-fatigue || $(BIN)/flask search reindex
	@echo ""
	@echo "  The portal is at http://127.0.0.1:$(PORT)/"
	@echo "  Demo sign-ins (password: demo-advocacy-2026): admin@example.com (admin),"
	@echo "  sam.sales@example.com (staff), and any advocate listed by 'flask demo seed'."
	@echo "  Email is sent by the outbox worker started beside the server (to MAIL_SERVER, 127.0.0.1:25 unless"
	@echo "  configured; mail it cannot send waits in the outbox: flask outbox status)."
	@echo ""
	@# One recipe line, one shell: the worker runs in the background, the server in the foreground; when
	@# the server ends (Ctrl-C reaches both), the trap stops the worker (SIGTERM: it finishes the message
	@# it is sending) and waits for it.
	export PORTAL_PUBLIC_BASE_URL="$${PORTAL_PUBLIC_BASE_URL:-http://127.0.0.1:$(PORT)}"; \
	  $(BIN)/flask outbox worker & worker=$$!; \
	  trap 'kill -TERM $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	  $(BIN)/flask run --host 127.0.0.1 --port $(PORT)

test: install-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-timing: install-test
	$(BIN)/python -m pytest --timing -m timing tests/timing $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install-test
	$(BIN)/python -m bench $(BENCH_ARGS)
	$(BIN)/python -m bench --admin $(BENCH_ADMIN_ARGS)

bench-admin: install-test
	$(BIN)/python -m bench --admin $(BENCH_ADMIN_ARGS)

# build/ is cleared first: setuptools reuses it, and a file deleted from the tree would stay in the wheel.
wheel: | $(BIN)/python
	rm -rf build
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir dist .

clean-venv:
	rm -rf $(VENV)
