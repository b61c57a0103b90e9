# The Recovery Platform's entry points: run, token, test, lint, bench. See README.md.
# Everything installs into .venv from requirements/lock.txt; nothing else is needed by hand.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
LOCK := requirements/lock.txt
DEV := requirements/dev.txt
INSTALLED := $(VENV)/.installed
# Every installable part: the shared kit, each service, and the gateway once it exists.
PACKAGES := libs/common $(patsubst %/pyproject.toml,%,$(sort $(wildcard services/*/pyproject.toml gateway/pyproject.toml)))
JWKS := var/dev-issuer/jwks.json
# checkov has a virtual environment of its own: its pins would fight the platform's.
CHECKOV_LOCK := requirements/checkov.txt
CHECKOV_VENV := var/tools/checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
# The oldest FastAPI the kit declares (libs/common/pyproject.toml), installed over the lock in
# a virtual environment of its own, where the kit's tests run too.
FASTAPI_FLOOR := $(shell sed -n 's/^ *"fastapi>=\([0-9.]*\)".*/\1/p' libs/common/pyproject.toml)
FLOOR_VENV := var/fastapi-$(FASTAPI_FLOOR)
FLOOR_INSTALLED := $(FLOOR_VENV)/.installed
# The bench's peer (Hive Gateway over a GraphQL Mesh composition), pinned by its lock file
# in bench/peer and installed with `npm ci` into a folder of its own, never globally.
PEER_SOURCE := bench/peer
PEER_DIR := var/peer
PEER_INSTALLED := $(PEER_DIR)/.installed

# `make -s token` arguments; SUB, TEAMS, PATIENT and SCOPE are optional.
ROLE ?= clinician
SUB ?=
TEAMS ?=
PATIENT ?=
SCOPE ?=
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-x -k goals"`.
PYTEST_ARGS ?=

.PHONY: help install run token test test-unit test-fast test-fastapi-floor lint bench peer lock clean

help:
	@echo "make run                 install if needed, start NATS and every service"
	@echo "make -s token ROLE=clinician SUB=staff-1 TEAMS=team-a   print a development JWT"
	@echo "make test                the whole test suite (SQLite and PostgreSQL, real NATS)"
	@echo "make test-fast           without PostgreSQL;  make test-unit: no NATS, no database"
	@echo "make test-fastapi-floor  the kit's tests on the oldest FastAPI it supports"
	@echo "make lint                ruff, and mypy (strict) on the kit, services and gateway"
	@echo "make bench               the benchmark; results in bench/results, docs/performance.md"
	@echo "make peer                install the bench's peer gateway (npm ci into var/peer)"
	@echo "make lock                re-pin requirements/*.txt;  make clean: remove local state"

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is needed (found $(PYTHON))" >&2; exit 1; }
	@$(PYTHON) -m venv $(VENV) >&2 || { rm -rf $(VENV); echo "Could not create $(VENV);" \
		"on Debian or Ubuntu install python3-venv first" >&2; exit 1; }

# All pip output goes to stderr, so `make -s token` on a fresh clone prints only the token.
# Build isolation is off so the build backend (hatchling) is the pinned one too.
$(INSTALLED): $(LOCK) $(DEV) $(addsuffix /pyproject.toml,$(PACKAGES)) | $(PY)
	@echo "Installing the development environment into $(VENV) (pinned by $(LOCK)) ..." >&2
	@$(PY) -m pip install -q -c $(LOCK) hatchling editables >&2
	@$(PY) -m pip install -q --no-build-isolation -c $(LOCK) -r $(DEV) \
		$(addprefix -e ,$(PACKAGES)) >&2
	@LC_ALL=C comm -23 <($(PY) -m pip freeze --exclude-editable | grep -v '^#' | LC_ALL=C sort -f) \
		<(grep -v '^#' $(LOCK) | LC_ALL=C sort -f) | sed 's/^/warning: not pinned in $(subst /,\/,$(LOCK)) (run make lock): /' >&2
	@touch $@

install: $(INSTALLED)

$(CHECKOV): $(CHECKOV_LOCK)
	@echo "Installing checkov into $(CHECKOV_VENV) (pinned by $(CHECKOV_LOCK)) ..." >&2
	@rm -rf $(CHECKOV_VENV) && $(PYTHON) -m venv $(CHECKOV_VENV) >&2
	@$(CHECKOV_VENV)/bin/pip install -q --no-deps -r $(CHECKOV_LOCK) >&2
	@touch $@

$(JWKS): | $(INSTALLED)
	@$(PY) -c 'from recovery.common.dev_issuer import DevIssuer; DevIssuer().ensure_keys()'

run: $(INSTALLED)
	@deploy/local/run.sh

token: $(INSTALLED)
	@$(PY) -m recovery.common.dev_issuer --role "$(ROLE)" --sub "$(SUB)" --teams "$(TEAMS)" \
		--patient "$(PATIENT)" $(if $(SCOPE),--scope "$(SCOPE)")

# The whole check, as CI runs it: lint first (seconds), then every test, then the kit's tests
# again on the oldest FastAPI it supports.
test: lint $(CHECKOV) $(PEER_INSTALLED)
	$(BIN)/pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-fastapi-floor

$(FLOOR_INSTALLED): $(LOCK) $(DEV) libs/common/pyproject.toml
	@echo "Installing FastAPI $(FASTAPI_FLOOR) over the lock into $(FLOOR_VENV) ..." >&2
	@rm -rf $(FLOOR_VENV) && $(PYTHON) -m venv $(FLOOR_VENV) >&2
	@grep -v '^fastapi==' $(LOCK) > $(FLOOR_VENV)/constraints.txt
	@echo "fastapi==$(FASTAPI_FLOOR)" >> $(FLOOR_VENV)/constraints.txt
	@$(FLOOR_VENV)/bin/pip install -q -c $(FLOOR_VENV)/constraints.txt hatchling editables >&2
	@$(FLOOR_VENV)/bin/pip install -q --no-build-isolation -c $(FLOOR_VENV)/constraints.txt \
		-r $(DEV) -e libs/common >&2
	@touch $@

test-fastapi-floor: $(FLOOR_INSTALLED)
	$(FLOOR_VENV)/bin/python -c 'import fastapi; assert fastapi.__version__ == "$(FASTAPI_FLOOR)"'
	$(FLOOR_VENV)/bin/pytest libs/common/tests $(PYTEST_ARGS)

# The database fixture's ids are `sqlite` and `postgres`; integration tests are marked.
test-fast: $(INSTALLED)
	$(BIN)/pytest -k "not postgres" $(PYTEST_ARGS)

test-unit: $(INSTALLED)
	$(BIN)/pytest -m "not integration and not postgres and not slow" \
		-k "not sqlite and not postgres" $(PYTEST_ARGS)

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/mypy libs/common/src
	# Each service and the gateway on its own: they share the recovery namespace.
	for package in services/goals services/crisis-plans services/risk services/training \
			services/workforce gateway; do \
		$(BIN)/mypy $$package/src || exit 1; done

$(PEER_INSTALLED): $(PEER_SOURCE)/package.json $(PEER_SOURCE)/package-lock.json $(PEER_SOURCE)/.npmrc
	@command -v npm >/dev/null || { echo "The bench's peer needs Node.js 20+ and npm" >&2; exit 1; }
	@echo "Installing the bench's peer into $(PEER_DIR) (pinned by $(PEER_SOURCE)/package-lock.json) ..." >&2
	@rm -rf $(PEER_DIR) && mkdir -p $(PEER_DIR)
	@cp $(PEER_SOURCE)/package.json $(PEER_SOURCE)/package-lock.json $(PEER_SOURCE)/.npmrc $(PEER_DIR)/
	@cd $(PEER_DIR) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2
	@touch $@

peer: $(PEER_INSTALLED)

bench: $(INSTALLED) $(JWKS) $(PEER_INSTALLED)
	$(PY) -m bench

# Re-pins every third-party package: a throwaway venv gets the newest releases allowed by
# requirements/dev.txt and the pyproject.toml files, and its `pip freeze` becomes the lock.
lock:
	@rm -rf var/lock-venv && $(PYTHON) -m venv var/lock-venv
	@var/lock-venv/bin/pip install -q hatchling editables
	@var/lock-venv/bin/pip install -q --no-build-isolation -r $(DEV) $(addprefix -e ,$(PACKAGES))
	@{ echo "# Every third-party package of the development environment, pinned. Generated by"; \
	  echo "# \`make lock\` from requirements/dev.txt and the packages' pyproject.toml; do not edit."; \
	  var/lock-venv/bin/pip freeze --exclude-editable | grep -v '^#' | LC_ALL=C sort -f; } > $(LOCK)
	@rm -rf var/lock-venv && $(PYTHON) -m venv var/lock-venv
	@var/lock-venv/bin/pip install -q "$$(grep '^checkov==' $(CHECKOV_LOCK))"
	@{ sed -n '1,3p' $(CHECKOV_LOCK); \
	  var/lock-venv/bin/pip freeze | grep -v '^#' | LC_ALL=C sort -f; } > $(CHECKOV_LOCK).new
	@mv $(CHECKOV_LOCK).new $(CHECKOV_LOCK) && rm -rf var/lock-venv
	@echo "$(LOCK) and $(CHECKOV_LOCK) updated; review the diff and commit it"

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis bench/results
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
