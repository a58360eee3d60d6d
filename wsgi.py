"""WSGI entry point for gunicorn and the flask CLI."""

from inventory import create_app
from inventory.settings import exit_if_misconfigured

exit_if_misconfigured()
app = create_app()
