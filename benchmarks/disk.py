"""The disk's own ceiling for durable small writes, measured in the same run as the targets.

NebulaIO's durable-PUT target is stated against this figure: one thread creating 4 KiB files
the way a careful store must (temp file, write, fsync, rename, fsync the directory).
"""

import os
import tempfile
import time

CREATE_SIZE = 4 << 10


def durable_creates_per_second(count: int = 300, seconds: float = 5.0) -> float:
    payload = os.urandom(CREATE_SIZE)
    with tempfile.TemporaryDirectory(prefix="bench-disk-") as directory:
        directory_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            started = time.perf_counter()
            done = 0
            while done < count and time.perf_counter() - started < seconds:
                temp = os.path.join(directory, f"tmp-{done}")
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                os.write(fd, payload)
                os.fsync(fd)
                os.close(fd)
                os.rename(temp, os.path.join(directory, f"obj-{done}"))
                os.fsync(directory_fd)
                done += 1
            return done / (time.perf_counter() - started)
        finally:
            os.close(directory_fd)
