"""HTTP API: one blueprint package per resource, routes and schemas side by side."""
