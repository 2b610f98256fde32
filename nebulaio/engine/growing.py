"""The data plane of a node started alone, which a cluster can grow around without a restart.

While this node is the only registered one it keeps the single-node path (`LocalData`: no
network hop, no holders to record). Once another node has registered (it joined through
`--join` and the Admin API's add, or as a storage node) every write is placed on R holders
(`ClusterData`), and the repair loop gives the records written alone their holders.
"""

from __future__ import annotations

from nebulaio.engine.dataplane import ClusterData, LocalData


class GrowingData:
    """`LocalData` while this node is alone, `ClusterData` from the moment it is not.

    NOTE: decided on each call from the replica's nodes table (a few records): nothing to
    restart, and every worker switches on its own as soon as it reads the registration.
    """

    __slots__ = ("store", "_reader", "_alone", "_clustered")

    def __init__(self, reader, alone: LocalData, clustered: ClusterData):
        self.store = alone.store
        self._reader = reader
        self._alone = alone
        self._clustered = clustered

    def current(self) -> LocalData | ClusterData:
        return self._alone if len(self._reader.nodes.all()) < 2 else self._clustered

    def __getattr__(self, name: str):
        # Every other attribute (place, open, assemble, discard, ...) is the current plane's.
        return getattr(self.current(), name)
