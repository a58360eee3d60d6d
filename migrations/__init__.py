"""Numbered, idempotent table migrations; `flask --app wsgi migrate` applies the pending ones.

Each module is named NNNN_description.py and defines `apply(client, table_name)`.
Every migration must be safe to run again on a table it already changed.
"""
