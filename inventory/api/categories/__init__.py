"""Category endpoints: per-category aggregates in routes.py, schemas side by side."""
