"""Asset endpoints: reads in routes.py, operator writes in writes.py, schemas side by side."""
