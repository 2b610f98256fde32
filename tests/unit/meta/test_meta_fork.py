"""A worker forked before anything is open reads the writer's commits from the shared map."""

import multiprocessing

from nebulaio.meta import Applier, MetaReader, open_env

TIMEOUT = 10
MAP_SIZE = 1 << 30


def worker(path, committed, replies):
    committed[0].wait(TIMEOUT)
    reader = MetaReader(open_env(path, readonly=True, map_size=MAP_SIZE))
    replies.put((reader.applied_index(), reader.get_object("b", "k")))
    committed[1].wait(TIMEOUT)  # a later commit shows in the next read transaction
    replies.put((reader.applied_index(), reader.get_object("b", "k")))


def test_forked_reader_sees_committed_batches(tmp_path):
    path = str(tmp_path / "kv")
    context = multiprocessing.get_context("fork")
    committed, replies = (context.Event(), context.Event()), context.Queue()
    child = context.Process(target=worker, args=(path, committed, replies))
    child.start()
    try:
        env = open_env(path, readonly=False, map_size=MAP_SIZE)
        applier = Applier(env, lambda *version: None)
        record = {"key": "k", "vid": "v1", "inline": True, "mtime": 1}
        bucket = {"op": "bucket.create", "bucket": "b", "owner": "o", "created": 1, "region": "r"}
        applier.apply_batch(7, [(bucket, None), ({"op": "object.put", "bucket": "b", "record": record}, b"hi")])
        committed[0].set()
        index, (seen, inline) = replies.get(timeout=TIMEOUT)
        assert (index, seen["vid"], inline) == (7, "v1", b"hi")
        applier.apply_batch(8, [({"op": "object.delete", "bucket": "b", "key": "k"}, None)])
        committed[1].set()
        assert replies.get(timeout=TIMEOUT) == (8, None)
        env.close()
    finally:
        child.join(TIMEOUT)
        if child.exitcode is None:
            child.kill()
    assert child.exitcode == 0
