# atc-xaccount: two commands on a fresh machine — `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
export SAM_CLI_TELEMETRY := 0

.PHONY: run test lint build clean help

help:
	@echo "make run    - set up, then onboard the sample cluster on the embedded AWS emulator"
	@echo "make test   - set up, then run the test suite"
	@echo "make lint   - ruff, sam validate --lint"
	@echo "make build  - sam build (arm64, offline-capable)"

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

test: $(BIN)/.installed
	$(BIN)/python -m pytest

lint: $(BIN)/.installed $(SAM_VENV)/.installed
	$(BIN)/ruff check layers cli functions tests
	$(BIN)/ruff format --check layers cli functions tests
	$(SAM) validate --lint

build: $(SAM_VENV)/.installed
	$(SAM) build

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam
