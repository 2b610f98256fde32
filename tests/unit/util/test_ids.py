"""Ids come from blocks of the kernel's random bytes: unique across threads and forks."""

import os
import threading

from nebulaio.util.ids import ENTROPY_BLOCK, command_id, request_id, version_id


def test_ids_taken_across_many_blocks_are_unique():
    taken = [command_id() for _ in range(3 * ENTROPY_BLOCK)]
    assert len(set(taken)) == len(taken)
    assert all(len(rid) == 16 and rid == rid.upper() for rid in (request_id() for _ in range(100)))
    assert len(version_id()) == 32


def test_threads_never_share_ids():
    taken: list[list[str]] = [[] for _ in range(8)]

    def take(into: list[str]) -> None:
        into.extend(command_id() for _ in range(2000))

    threads = [threading.Thread(target=take, args=(into,)) for into in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [rid for into in taken for rid in into]
    assert len(set(every)) == len(every)


def test_a_forked_child_does_not_repeat_its_parents_ids():
    command_id()  # the parent now holds a partly used block
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:
        os.write(writer, "".join(command_id() for _ in range(10)).encode())
        os._exit(0)
    os.close(writer)
    os.waitpid(child, 0)
    with os.fdopen(reader, "rb") as pipe:
        theirs = pipe.read().decode()
    ours = "".join(command_id() for _ in range(10))
    assert len(theirs) == len(ours) == 240
    assert {theirs[i : i + 24] for i in range(0, 240, 24)}.isdisjoint({ours[i : i + 24] for i in range(0, 240, 24)})
