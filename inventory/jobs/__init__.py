"""Jobs: plain functions over the price source and the store (refresh, backfill, seed) and the scheduler that runs refresh."""
