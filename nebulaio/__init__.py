"""NebulaIO: a distributed, S3-compatible object store."""

__version__ = "0.1.0"
