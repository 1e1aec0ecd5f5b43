# Two commands: `make run` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
CHROMIUM ?= /usr/bin/chromium

.PHONY: run test check bench soak load install install-test chromium clean messages

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required")'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PIP) install --quiet -e '.[test]'
	@touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

run: install
	$(BIN)/saas run

chromium:
	@if [ -x "$(CHROMIUM)" ] || command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Debian's chromium for the browser tests..."; \
		(apt-get install -y chromium >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y chromium >/dev/null)); \
	else \
		echo "The browser tests need Chromium: install it (Debian: sudo apt-get install chromium) or set CHROMIUM_PATH." >&2; \
		exit 1; \
	fi

# Static checks, run first by `make test` (how to run them alone: README, "Static checks").
check: install-test
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

test: check chromium
	$(BIN)/pytest tests e2e

# Fault tests too slow or not yet reliable enough for `make test`.
soak: install-test
	$(BIN)/pytest soak

# A bounded mixed load on loopback against a fresh product (about 2 minutes); JSON as the last line.
# `make load DURATION=10` shortens it; TEST_DATABASE_URL/TEST_REDIS_URL are used when set.
load: install-test
	$(BIN)/python scripts/load.py $(if $(DURATION),--duration $(DURATION))

# Full size by default (1M clients: slow). `make bench QUICK=1` is a smoke run of every benchmark.
bench: install-test
	@for b in bench/*.py; do echo "== $$b"; \
		if [ -n "$(QUICK)" ]; then \
			case $$b in *tenants.py) args="--tenants 200";; *admin_list.py) args="--tenants 1000";; *) args="--quick";; esac; \
		else args=""; fi; \
		$(BIN)/python $$b $$args || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .import_linter_cache .grimp_cache

# Refresh the Russian catalog from the code and templates (then translate the new entries).
messages: install
	$(BIN)/pybabel extract -F babel.cfg -k _ -k gettext_ -k ngettext_:1,2 -k lazy --no-location --sort-output -o saas/locale/messages.pot .
	@if [ -f saas/locale/ru/LC_MESSAGES/messages.po ]; then \
		$(BIN)/pybabel update -i saas/locale/messages.pot -d saas/locale -l ru --no-fuzzy-matching; \
	else $(BIN)/pybabel init -i saas/locale/messages.pot -d saas/locale -l ru; fi
