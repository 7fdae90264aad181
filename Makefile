# atc-xaccount: two commands on a fresh machine — `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
CHECKS_VENV := .venv-checks
CHECKS := $(CHECKS_VENV)/bin
# Every CloudFormation template the deployment checks cover: the application and the
# bootstrap template(s) for the target accounts.
CFN_TEMPLATES := template.yaml $(sort $(wildcard bootstrap/*.yaml bootstrap/*.yml))
export SAM_CLI_TELEMETRY := 0

.PHONY: run test lint lint-ruff lint-sam lint-cfn lint-checkov lint-mypy build bench clean help

help:
	@echo "make run    - set up, then onboard the sample cluster on the embedded AWS emulator"
	@echo "make test   - set up, then run the test suite"
	@echo "make lint   - ruff, sam validate --lint, cfn-lint, checkov, mypy (the deployment checks)"
	@echo "make build  - sam build (arm64, offline-capable)"
	@echo "make bench  - benchmarks on the emulator: prints a table, writes bench/results.json"

# The project venv: the layer's library, the CLI, moto and the test tools.
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# SAM CLI pins its own boto3, so it lives in a venv of its own.
$(SAM_VENV)/.installed: requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet -r requirements-sam.txt
	touch $@

run: $(BIN)/.installed
	$(BIN)/atc-xaccount local run events/cluster-registered.json --world events/sample-world.json
	@echo; echo "The CLI is $(BIN)/atc-xaccount: '. $(BIN)/activate' puts it on this shell's PATH (README.md)."

# The independent IAM simulator the evaluator is held to (tests/differential, npm, test-time
# only, never shipped): installed from its lock file where npm is; without node the
# differential test skips and says why.
DIFFERENTIAL := tests/differential
$(DIFFERENTIAL)/node_modules/.installed: $(DIFFERENTIAL)/package.json $(DIFFERENTIAL)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		cd $(DIFFERENTIAL) && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	else echo "npm not found: the differential evaluator test (tests/differential) will be skipped"; fi

# Every core (pytest-xdist; TEST_WORKERS=0 runs in one process), one test file per worker
# at a time so module-scoped emulators are built once, and the 10 slowest tests at the end.
TEST_WORKERS ?= auto
test: $(BIN)/.installed $(DIFFERENTIAL)/node_modules/.installed
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=10

# checkov and mypy pin their own trees (requirements-checks.txt): a third venv. Python
# 3.11's venv writes no .gitignore into it, so the recipe does.
$(CHECKS_VENV)/.installed: requirements-checks.txt
	$(PYTHON) -m venv $(CHECKS_VENV)
	echo '*' > $(CHECKS_VENV)/.gitignore
	$(CHECKS)/pip install --quiet -r requirements-checks.txt
	touch $@

# The deployment checks (issue 4 item 6), in this order. Parliament on every policy the
# code and the template can produce runs with the tests (tests/deploy/).
lint: lint-ruff lint-sam lint-cfn lint-checkov lint-mypy

lint-ruff: $(BIN)/.installed
	$(BIN)/ruff check layers cli functions tests
	$(BIN)/ruff format --check layers cli functions tests

lint-sam: $(SAM_VENV)/.installed
	$(SAM) validate --lint

lint-cfn: $(SAM_VENV)/.installed
	$(SAM_VENV)/bin/cfn-lint $(CFN_TEMPLATES)

lint-checkov: $(CHECKS_VENV)/.installed
	$(CHECKS)/checkov --config-file .checkov.yaml $(addprefix --file ,$(CFN_TEMPLATES))

lint-mypy: $(CHECKS_VENV)/.installed
	$(CHECKS)/mypy --config-file mypy.ini

# Benchmarks: figures printed and written to bench/results.json (not pass/fail).
bench: $(BIN)/.installed $(SAM_VENV)/.installed
	$(BIN)/python -m bench.run

build: $(SAM_VENV)/.installed
	$(SAM) build

clean:
	rm -rf $(VENV) $(SAM_VENV) .venv-checks .aws-sam
