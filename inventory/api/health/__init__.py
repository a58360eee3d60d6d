"""Liveness and detailed health."""
