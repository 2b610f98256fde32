"""Group commit: commands that arrive together share raft entries and LMDB transactions."""

from concurrent.futures import ThreadPoolExecutor

from nebulaio.cluster.ipc import SupervisorClient
from nebulaio.storage.layout import DataLayout


def test_concurrent_commands_share_raft_entries(node, s3, bucket):
    client = SupervisorClient(DataLayout(str(node.data)).ipc_socket)
    before = client.call({"type": "status"})["applied_index"]
    commands = 200

    def delete(n):
        return client.call({"type": "submit", "command": {"op": "object.delete", "bucket": bucket, "key": f"k{n}"}})

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(delete, range(commands)))
    assert all(r["status"] == "ok" for r in results)
    entries = client.call({"type": "status"})["applied_index"] - before
    assert 0 < entries < commands / 2, f"{commands} commands took {entries} raft entries"


def test_unknown_request_is_refused_and_the_connection_stays_usable(node):
    client = SupervisorClient(DataLayout(str(node.data)).ipc_socket)
    assert client.call({"type": "nonsense"})["status"] == "InvalidRequest"
    assert client.call({"type": "status"})["ready"] is True
