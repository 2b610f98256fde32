"""The internal data endpoint that nodes of a cluster call on each other's admin listener."""
