"""Market analytics endpoints: overview and movers, schemas side by side."""
