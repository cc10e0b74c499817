# Workbay — `make run` starts the embedded default, `make test` runs every test.
# Both set up what is missing first; `make setup` is idempotent.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMPS := $(VENV)/.stamps
APT_PACKAGES := podman runc mmdebstrap chromium fonts-nanum uidmap slirp4netns fuse-overlayfs
PYTEST_ARGS ?=

.PHONY: setup run test lint system-packages python-env official-client assets engine images

setup: system-packages python-env official-client assets engine images

# Debian/Ubuntu packages, installed only when missing.
system-packages:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing system packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(STAMPS)/python: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev]'
	@mkdir -p $(STAMPS) && touch $@

python-env: $(STAMPS)/python

# Backend.AI's official client 23.09, in a venv of its own (it pins old dependencies), for the
# conformance tests. yarl 1.9.4: newer releases change the URL it signs.
$(STAMPS)/official-client: | $(STAMPS)/python
	$(PYTHON) -m venv .venv-bai
	.venv-bai/bin/pip install -q backend.ai-client==23.9.10 yarl==1.9.4
	@touch $@

official-client: $(STAMPS)/official-client

# Front-end assets: pinned in package.json/package-lock.json, copied into the package's static folder.
$(STAMPS)/assets: package.json package-lock.json tools/copy_assets.py | $(STAMPS)/python
	npm ci --no-audit --no-fund --loglevel=error
	$(PY) tools/copy_assets.py
	@touch $@

assets: $(STAMPS)/assets

# A container engine answering the Docker Engine API (Podman's service when none answers).
engine: system-packages
	@bash tools/podman_service.sh >/dev/null

# The default kernel image, a second Python version and PyTorch with TensorBoard and MLflow (cached:
# no-ops when the recipes have not changed; the PyTorch image takes about 6 minutes the first time).
images: engine python-env
	$(VENV)/bin/workbay image build python:3.11
	$(VENV)/bin/workbay image build python:3.9
	$(VENV)/bin/workbay image build pytorch:1.13-cpu

run: setup
	$(VENV)/bin/workbay up $(ARGS)

# Guard rails (docs/architecture.md): lint, types and the layer contracts, then every test.
lint: python-env
	$(VENV)/bin/ruff check src tests benchmarks tools
	$(VENV)/bin/mypy
	PYTHONPATH=src $(VENV)/bin/lint-imports

test: setup lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)
