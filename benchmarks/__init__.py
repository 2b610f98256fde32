"""Benchmark harness: NebulaIO beside its peers, measured by one lean S3 load generator."""
