# The Inventory Service image: the wheel (Swagger UI and ReDoc inside) and its
# pinned dependencies in a venv, gunicorn as a non-root user. DynamoDB is
# outside (DYNAMODB_ENDPOINT_URL, or AWS through the usual credential chain).
#
#   make image            # builds dist/ (the wheel and a wheelhouse of the pins), then this file
#   docker run -p 8002:8002 -e DYNAMODB_TABLE_NAME=inventory -e AWS_REGION=eu-west-1 inventory:1.0.0
#
# The build needs no network: everything it installs is in dist/.
# tests/e2e/test_container.py builds and runs it.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
RUN python3 -m venv /opt/inventory
COPY requirements.txt /build/
COPY dist/wheelhouse/ /build/wheelhouse/
RUN /opt/inventory/bin/pip install --no-cache-dir --no-index --find-links /build/wheelhouse -r /build/requirements.txt
COPY dist/inventory-*.whl /build/
RUN /opt/inventory/bin/pip install --no-cache-dir --no-index --no-deps /build/inventory-*.whl

FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent inventory
COPY --from=build /opt/inventory /opt/inventory
# Settings and hooks (workers, the master's price refresher, JSON logs) and the
# entry module, which are not in the wheel.
COPY gunicorn.conf.py wsgi.py /srv/inventory/
WORKDIR /srv/inventory
ENV PATH=/opt/inventory/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BIND=0.0.0.0:8002
USER 10001:10001
EXPOSE 8002
# /health touches nothing but the process; python rather than curl, which slim images lack.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; port = os.environ['BIND'].rsplit(':', 1)[1]; urllib.request.urlopen(f'http://127.0.0.1:{port}/health', timeout=2)"]
# exec form: gunicorn is PID 1 and gets docker stop's SIGTERM (graceful stop, lease released).
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
