"""Reports: the daily market report (JSON or CSV)."""
