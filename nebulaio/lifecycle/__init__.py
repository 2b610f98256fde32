"""Bucket lifecycle: the stored rules, how they judge an object or upload, and the sweeper.

- `rules`: the stored form of a configuration (the bucket setting "lifecycle") and its
  evaluation, pure and deterministic given a clock.
- `sweeper`: the raft leader's background pass that proposes the expirations and aborts the
  rules call for, through the log like any other command.
"""
