"""A repair pull keeps only the bytes its holder signed: two holders reached through a link that
flips a byte of what they send are not copied from (no file is left), and once the link is
sound again the copy is made, byte for byte."""

from __future__ import annotations

import os
import socket
import threading

import pytest
from conftest import wait_for
from faults import LinkProxy
from test_cluster_data import new_bucket, stored_record

from nebulaio.storage.objects import key_hash

REPAIR_ARGS = ["--repair-interval", "0.5"]
SIZE = 512 * 1024
FLIP_AT = 64 * 1024
"""Offset in an answer of the byte flipped: past any head, inside any body this large."""
REPAIR_TIMEOUT = 120.0
PUMP_CHUNK = 1 << 16


class TamperingProxy(LinkProxy):
    """A link to a node's inter-node listener that, while `tampering` is set, flips the byte at
    FLIP_AT of what the node sends back on each connection."""

    def __init__(self, target: int):
        self.tampering = threading.Event()
        self.tampered = 0
        super().__init__(target)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        if source.getpeername()[1] != self.target:
            return super()._pump(source, sink)
        sent = 0
        try:
            while not self._closed.is_set():
                try:
                    data = bytearray(source.recv(PUMP_CHUNK))
                except TimeoutError:
                    continue
                if not data:
                    break
                if self.tampering.is_set() and sent <= FLIP_AT < sent + len(data):
                    data[FLIP_AT - sent] ^= 0x01
                    self.tampered += 1
                sent += len(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                sock.close()


@pytest.fixture(scope="module")
def tampered_trio(cluster_factory):
    """Three nodes; node0 and node2 are reached by their peers through tampering proxies."""
    proxies: list[TamperingProxy] = []

    def advertise(position, node):
        if position == 1:
            return {}
        proxy = TamperingProxy(node.ports["internal"])
        proxies.append(proxy)
        return {"internal": proxy.address}

    nodes = cluster_factory(3, args=REPAIR_ARGS, advertise=advertise)
    yield nodes, proxies
    for proxy in proxies:
        proxy.close()


def test_a_pull_of_tampered_bytes_is_refused_and_a_sound_one_restores_the_copy(tampered_trio):
    nodes, proxies = tampered_trio
    bucket = new_bucket(nodes)
    body = os.urandom(SIZE)
    nodes[1].client().put_object(Bucket=bucket, Key="pulled", Body=body)
    vid = stored_record(nodes[1], bucket, "pulled")["vid"]
    lost = nodes[1].data / "objects" / bucket / key_hash("pulled") / vid
    wait_for(lost.exists, 30, "node1's copy")
    for proxy in proxies:
        proxy.tampering.set()
    lost.unlink()
    # The repair loop of node1 pulls the file back from node0 or node2, and every answer is
    # tampered with on the way: no copy is kept, however many passes try.
    wait_for(lambda: sum(proxy.tampered for proxy in proxies) >= 3, REPAIR_TIMEOUT, "several tampered pulls")
    assert not lost.exists()
    for proxy in proxies:
        proxy.tampering.clear()
    wait_for(lost.exists, REPAIR_TIMEOUT, "the copy pulled through a sound link")
    assert lost.read_bytes() == body
