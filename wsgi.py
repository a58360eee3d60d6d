"""WSGI entry point for gunicorn and the flask CLI."""

from inventory import create_app

app = create_app()
