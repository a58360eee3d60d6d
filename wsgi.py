"""WSGI entry point for gunicorn and the flask CLI."""

from inventory import create_app
from inventory.settings import load_config_or_exit

app = create_app(load_config_or_exit())
