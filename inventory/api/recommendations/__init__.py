"""Recommendations: similar assets and diversifiers for holdings."""
