# edgekv: `make demo` runs the local multi-region cluster, `make test` runs every check.
# Both set up what they need on a fresh machine (venv, packages).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed
NODE_DEPS := tests/compat/node_modules/.edgekv-installed
# Cloudflare's Workers runtime (npm package workerd), for tests/workerd and make workers-demo.
WORKERD_VERSION := 1.20261117.1
WORKERD := .workerd/node_modules/.bin/workerd

.PHONY: all venv demo workers-demo workerd test lint typecheck pytest proto proto-check bench compose-test deps-debian node-deps clean

all: test

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# Generated code comes from here only; never edit kvcore/pb by hand.
proto: $(STAMP)
	$(PY) -m grpc_tools.protoc -Ikvcore/pb=proto --python_out=. --pyi_out=. --grpc_python_out=. proto/edgekv.proto

# Fails when the committed kvcore/pb differs from what `make proto` generates.
proto-check: $(STAMP)
	@tmp=$$(mktemp -d) && \
	$(PY) -m grpc_tools.protoc -Ikvcore/pb=proto --python_out=$$tmp --pyi_out=$$tmp --grpc_python_out=$$tmp proto/edgekv.proto && \
	for f in edgekv_pb2.py edgekv_pb2.pyi edgekv_pb2_grpc.py; do \
	  cmp -s $$tmp/kvcore/pb/$$f kvcore/pb/$$f || { echo "kvcore/pb/$$f is stale: run 'make proto' and commit"; rm -rf $$tmp; exit 1; }; \
	done; rm -rf $$tmp; echo "proto: generated code is up to date"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy kvcore central replica edgekv

pytest: $(STAMP) $(NODE_DEPS) $(WORKERD)
	$(VENV)/bin/pytest -q

# npm packages of the compatibility tests (tests/compat): Miniflare (the differential
# test) and wrangler (run against real processes), pinned by tests/compat/package-lock.json.
# Node.js >= 20 comes with the machine; Debian's nodejs/npm stand in where it is missing.
$(NODE_DEPS): tests/compat/package.json tests/compat/package-lock.json
	@command -v npm >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm)
	npm ci --prefix tests/compat --no-audit --no-fund
	touch $@

node-deps: $(NODE_DEPS)

# Debian packages the tests use: promtool and prometheus (tests/ops/test_prometheus.py), curl, openssl,
# postgresql (tests/lib/helpers/postgres.py starts throwaway servers from its binaries).
deps-debian:
	@# chromium: Playwright drives it in tests/ui (`playwright install` is never used).
	@test -x /usr/bin/chromium || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium)
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus)
	@# curl and openssl: the operations guide's commands, run as written (tests/ops/test_guide_commands.py).
	@command -v curl >/dev/null && command -v openssl >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl openssl)
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql)

# workerd from npm into .workerd/ (npm from Debian if the machine has none).
$(WORKERD):
	@command -v npm >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm)
	npm install --prefix .workerd --no-audit --no-fund --no-save workerd@$(WORKERD_VERSION)
workerd: $(WORKERD)

test: deps-debian $(WORKERD) proto-check lint typecheck pytest

demo: $(STAMP)
	$(VENV)/bin/edgekv dev --walkthrough --propagation-delay 5

# One request-count Worker per region on workerd, each bound to its region's replica.
workers-demo: $(STAMP) $(WORKERD)
	$(PY) examples/request_count/workers_demo.py

# Builds the image on a debootstrap stand-in base, runs central + us/eu/ap under docker compose
# and checks create/update propagation through the published ports (needs root).
compose-test:
	bash scripts/compose_test.sh

# Benchmarks (never part of `make test`): wrk (Debian) drives HTTP load, Miniflare (npm, in
# bench/.miniflare) is a baseline, py-spy profiles whatever misses a target. See bench/run.py.
bench: $(STAMP)
	@command -v wrk >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk)
	@test -d bench/.miniflare/node_modules/miniflare || npm install --prefix bench/.miniflare --no-audit --no-fund miniflare
	@test -x $(VENV)/bin/py-spy || $(PIP) install --quiet py-spy
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql)
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
