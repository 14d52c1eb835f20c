# PACS backup appliance: developer and CI entry points. `make help` lists them.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python

.DEFAULT_GOAL := help
.PHONY: help setup run down status test arm64-smoke test-unit test-integration test-stack images images-optional lint typecheck package bench clean

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

setup: ## Install everything the appliance and its tests need (idempotent, cached; logs in .tools/logs)
	@dev/setup all

run: ## Start Orthanc+plugin, the object store (OBJECT_STORE: versitygw or minio), rest-server, the dashboard natively on loopback (installs only what they need)
	@dev/setup run
	@$(PY) dev/stack.py up

down: ## Stop everything `make run` started
	@if [ -x $(PY) ]; then $(PY) dev/stack.py down; fi

status: ## Show what `make run` is running and the backup status
	@$(PY) dev/stack.py status

lint: setup ## ruff (style, security and bare-except rules), ruff format --check, import contracts, actionlint on the workflows
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@PYTHONPATH=plugins $(VENV)/bin/lint-imports --no-cache --no-logo
	@dev/setup go actionlint >/dev/null
	@.tools/bin/actionlint .github/workflows/*.yml

typecheck: setup ## mypy (strict) on the engine package
	@$(VENV)/bin/mypy

test-unit: setup ## Unit tests only (no programs started)
	@$(VENV)/bin/pytest tests/unit

test-integration: setup ## Integration tests against real Orthanc, MinIO, restic, rest-server
	@$(VENV)/bin/pytest tests/integration

test-stack: setup ## The Docker Compose stack test (installs and starts a Docker engine if needed)
	@$(VENV)/bin/pytest tests/stack

images: ## Build the appliance's images without a registry (orthanc, dashboard, proxy, object store); lists the tags
	@dev/docker-setup

images-optional: ## Build the optional profiles' images (offsite-demo rest-server, PostgreSQL); lists the tags
	@dev/docker-setup --optional

# Two test processes (one per core); a file's tests stay in one process, so its fixtures are shared. Files go
# out longest first (tests/support/file_costs.py), not by xdist's count of tests, so both processes end together.
# The ten slowest tests are printed at the end of each run, to keep the suite's cost visible.
PYTEST_PARALLEL := -n 2 --dist loadfile --no-loadscope-reorder --durations=10

test: setup lint typecheck ## Every test (what CI runs), including a run of the benchmark harness on tiny data
	@$(VENV)/bin/pytest tests --ignore=tests/arm64 $(PYTEST_PARALLEL)

test-s3: setup ## Copy, object-lock, drill and restore tests on every supported S3 server (MinIO, SeaweedFS, Versity S3 Gateway)
	@dev/setup go seaweedfs versitygw
	@S3_SERVER=all $(VENV)/bin/pytest tests/integration/test_s3_matrix.py -k s3_matrix

arm64-smoke: setup ## Build the arm64 images under emulation and run the stack on them (slow; not in make test)
	@dev/arm64-images
	@$(VENV)/bin/pytest tests/arm64

package: setup ## Build the installable package (engine, entry module, dashboard) into dist/
	@$(VENV)/bin/pip wheel --no-deps --quiet -w dist .
	@ls dist/*.whl

bench: setup ## Benchmarks: ratios against raw baselines (QUICK=1 for a few minutes; SCALE=1: costs vs archive size; GROUP=1: the group catalog at 10 million images)
	@if [ -n "$(GROUP)" ] && [ "$(GROUP)" != 0 ]; then $(PY) benchmarks/group_scale.py; \
	elif [ -n "$(SCALE)" ] && [ "$(SCALE)" != 0 ]; then $(PY) benchmarks/scale.py; else QUICK="$(QUICK)" $(PY) benchmarks/run.py; fi

clean: down ## Remove the local stack's data (.devstack) - asks nothing, deletes everything local
	rm -rf .devstack
