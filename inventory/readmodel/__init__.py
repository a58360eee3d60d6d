"""The per-process read model: the catalog in memory, fed by the change log (docs/read-model.md)."""
