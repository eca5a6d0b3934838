"""Our federation router and Hive Gateway side by side on canned subgraphs (see bench/README.md)."""
