"""Data layer: IDX reader, dataset sources, in-memory batching, K-fold splits, regression data."""
