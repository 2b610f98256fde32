"""A pass-through FUSE filesystem that loses what was not fsynced when its power is cut.

In the manner of Jepsen's LazyFS: every operation reaches the backing directory at once, so
the processes above see a normal filesystem, but the content each file had at its last
fsync (or fdatasync, or msync of a shared mapping, which reaches FUSE as writes and an
fsync) is kept as an undo log of the bytes and lengths changed since.

The power cut (a line "cut" on the process's standard input) reverts every file to its
durable content at once and turns the filesystem off: an fsync still in progress makes
nothing durable, and the writes of dying processes (their dirty mmap pages reach FUSE when
they exit) change nothing. Unmounting, then mounting the backing directory again, is the
reboot; it also drops the kernel's page cache of the mount, so nothing written before the
cut is seen after it. Unmounting a filesystem whose power was not cut cuts it first.

What is modelled: write, truncate (including open with O_TRUNC and a mmap'd file's resize)
and mmap'd writes are lazy per file; fsync and fdatasync make a file's data durable once
they return, after FSYNC_SECONDS (a line "fsync SECONDS" changes it): a slow disk keeps the
window between a write and its durability open long enough to see a missing fsync. Names are not lazy:
create, mkdir, rename, link and unlink are durable at once, as a journalling filesystem
commits them soon after. So a new file that was never fsynced survives the cut empty, and a
file renamed over another keeps its new name with the content it had at its last fsync.

    python tests/integration/lazyfs.py BACKING MOUNTPOINT [FSYNC_SECONDS]   # until unmounted

A mount with the `fuse` module (fusepy) and libfuse 2 (Debian's libfuse2); root, /dev/fuse.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from nebulaio.node import die_with_parent

MOUNT_SECONDS = 10.0
POLL = 0.02
NAMESPACE_CHANGES = frozenset(
    ("create", "mkdir", "rmdir", "mknod", "unlink", "rename", "link", "symlink", "chmod", "chown")
)
"""Operations that change the namespace: refused once the power is off."""


@dataclass
class Undo:
    """What one file's data was at its last fsync, as the changes since, newest last.

    Each change is (offset, the bytes it overwrote, the file's length before it).
    """

    fd: int
    changes: list[tuple[int, bytes, int]] = field(default_factory=list)

    def revert(self) -> int:
        """Put the durable content back; returns how many bytes of changes were lost."""
        for offset, old, length in reversed(self.changes):
            os.ftruncate(self.fd, length)
            if old:
                os.pwrite(self.fd, old, offset)
        os.close(self.fd)
        return sum(max(len(old), 1) for _, old, _ in self.changes)


def inode_of(fd: int) -> tuple[int, int]:
    status = os.fstat(fd)
    return status.st_dev, status.st_ino


def make_operations(backing: str, fsync_seconds: float = 0.0):
    """The fusepy Operations class over `backing` (imported here: a test without FUSE skips)."""
    from fuse import FuseOSError, Operations

    class LazyOperations(Operations):
        def __init__(self) -> None:
            self.root = os.path.realpath(backing)
            self.mutex = threading.Lock()
            self.undo: dict[tuple[int, int], Undo] = {}
            self.powered = True
            self.fsync_seconds = fsync_seconds

        def __call__(self, op, path, *args):
            if op in NAMESPACE_CHANGES and not self.powered:
                raise FuseOSError(errno.EIO)
            return super().__call__(op, self.root + path, *args)

        def cut_power(self) -> str:
            """Every file back to its last fsync; nothing changes any more. Says what was lost."""
            with self.mutex:
                if not self.powered:
                    return "already off"
                self.powered = False
                lost = [undo.revert() for undo in self.undo.values()]
                self.undo.clear()
            return f"reverted {len(lost)} files, {sum(lost)} bytes of unsynced changes"

        # The lazy part.
        def _remember(self, fd: int, offset: int, size: int) -> None:
            """Keep the bytes [offset, offset + size) and the length as they are, before a change."""
            key = inode_of(fd)
            length = os.fstat(fd).st_size
            old = os.pread(fd, min(size, length - offset), offset) if offset < length else b""
            undo = self.undo.get(key)
            if undo is None:
                undo = self.undo[key] = Undo(os.dup(fd))
            undo.changes.append((offset, old, length))

        def _durable(self, key: tuple[int, int]) -> None:
            undo = self.undo.pop(key, None)
            if undo is not None:
                os.close(undo.fd)

        def _check_power(self) -> None:
            if not self.powered:
                raise FuseOSError(errno.EIO)

        def write(self, path, data, offset, fh):
            with self.mutex:
                self._check_power()
                self._remember(fh, offset, len(data))
                return os.pwrite(fh, data, offset)

        def truncate(self, path, length, fh=None):
            fd = fh if fh is not None else os.open(path, os.O_RDWR)
            try:
                with self.mutex:
                    self._check_power()
                    current = os.fstat(fd).st_size
                    self._remember(fd, length, max(0, current - length))
                    os.ftruncate(fd, length)
            finally:
                if fh is None:
                    os.close(fd)

        def fsync(self, path, datasync, fh):
            time.sleep(self.fsync_seconds)
            with self.mutex:
                self._check_power()  # a flush the power cut interrupted made nothing durable
                self._durable(inode_of(fh))
            return 0

        def fsyncdir(self, path, datasync, fh):
            return 0  # names are durable at once (see the module's docstring)

        def destroy(self, path):
            print(f"unmounted: {self.cut_power()}", file=sys.stderr, flush=True)

        def _forget_if_last_name(self, path: str) -> None:
            try:
                status = os.lstat(path)
            except FileNotFoundError:
                return
            if status.st_nlink == 1:
                with self.mutex:
                    self._durable((status.st_dev, status.st_ino))

        # Pass-through.
        def open(self, path, flags):
            truncate = flags & os.O_TRUNC
            # Writes carry their offsets (the kernel resolves O_APPEND), and the undo log reads
            # what a write replaces, so the backing file is always opened for both.
            fd = os.open(path, (flags & ~(os.O_TRUNC | os.O_APPEND | os.O_ACCMODE)) | os.O_RDWR)
            if truncate:
                self.truncate(path, 0, fd)
            return fd

        def create(self, path, mode, fi=None):
            return os.open(path, os.O_RDWR | os.O_CREAT, mode)

        def read(self, path, size, offset, fh):
            return os.pread(fh, size, offset)

        def flush(self, path, fh):
            return 0  # close(2), not a sync

        def release(self, path, fh):
            os.close(fh)
            return 0

        def getattr(self, path, fh=None):
            status = os.fstat(fh) if fh is not None else os.lstat(path)
            return {
                name: getattr(status, name)
                for name in (
                    "st_mode",
                    "st_nlink",
                    "st_uid",
                    "st_gid",
                    "st_size",
                    "st_atime",
                    "st_mtime",
                    "st_ctime",
                    "st_blocks",
                    "st_ino",
                )
            }

        def access(self, path, mode):
            if not os.access(path, mode):
                raise FuseOSError(errno.EACCES)

        def readdir(self, path, fh):
            return [".", "..", *os.listdir(path)]

        def readlink(self, path):
            return os.readlink(path)

        def mkdir(self, path, mode):
            return os.mkdir(path, mode)

        def rmdir(self, path):
            return os.rmdir(path)

        def mknod(self, path, mode, dev):
            return os.mknod(path, mode, dev)

        def unlink(self, path):
            self._forget_if_last_name(path)
            return os.unlink(path)

        def rename(self, old, new):
            self._forget_if_last_name(self.root + new)
            return os.rename(old, self.root + new)

        def link(self, target, source):
            return os.link(self.root + source, target)

        def symlink(self, target, source):
            return os.symlink(source, target)

        def chmod(self, path, mode):
            return os.chmod(path, mode)

        def chown(self, path, uid, gid):
            return os.chown(path, uid, gid)

        def utimens(self, path, times=None):
            return os.utime(path, times)

        def statfs(self, path):
            status = os.statvfs(path)
            return {
                name: getattr(status, name)
                for name in (
                    "f_bavail",
                    "f_bfree",
                    "f_blocks",
                    "f_bsize",
                    "f_favail",
                    "f_ffree",
                    "f_files",
                    "f_flag",
                    "f_frsize",
                    "f_namemax",
                )
            }

    return LazyOperations()


class LazyMount:
    """A lazyfs process serving `backing` at `mountpoint`, controlled through its standard input."""

    def __init__(self, backing: Path, mountpoint: Path, log_path: Path, fsync_seconds: float = 0.0):
        self.backing = backing
        self.mountpoint = mountpoint
        self.log_path = log_path
        self.fsync_seconds = fsync_seconds
        self.process: subprocess.Popen | None = None
        backing.mkdir(parents=True, exist_ok=True)
        mountpoint.mkdir(parents=True, exist_ok=True)

    def mount(self) -> LazyMount:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, __file__, str(self.backing), str(self.mountpoint), str(self.fsync_seconds)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                start_new_session=True,
                preexec_fn=die_with_parent,  # a test run that is killed unmounts too
            )
        deadline = time.monotonic() + MOUNT_SECONDS
        while not os.path.ismount(self.mountpoint):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"lazyfs did not mount {self.mountpoint}: {self.log_path.read_text()[-2000:]}")
            time.sleep(POLL)
        return self

    def command(self, line: str) -> str:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def cut_power(self) -> str:
        """Lose every unsynced write now; returns what was lost, in words."""
        return self.command("cut")

    def slow_down(self, fsync_seconds: float) -> None:
        """Each fsync from now on takes `fsync_seconds` (until the next mount)."""
        self.command(f"fsync {fsync_seconds}")

    def reboot(self) -> None:
        """Unmount (once nothing has a file open there any more) and mount again."""
        deadline = time.monotonic() + MOUNT_SECONDS
        while subprocess.run(["umount", str(self.mountpoint)], capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.mountpoint} stays busy")
            time.sleep(POLL)
        self.process.wait(MOUNT_SECONDS)
        self.mount()

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            subprocess.run(["umount", "-l", str(self.mountpoint)], capture_output=True)
            try:
                self.process.wait(MOUNT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def serve_commands(operations) -> None:
    """Standard input's commands: "cut" cuts the power and answers what was lost;
    "fsync SECONDS" sets how long an fsync takes."""
    for line in sys.stdin:
        name, _, argument = line.strip().partition(" ")
        if name == "cut":
            print(operations.cut_power(), flush=True)
        elif name == "fsync":
            operations.fsync_seconds = float(argument)
            print("ok", flush=True)


def main(backing: str, mountpoint: str, fsync_seconds: str = "0") -> None:
    from fuse import FUSE

    operations = make_operations(backing, float(fsync_seconds))
    threading.Thread(target=serve_commands, args=(operations,), daemon=True).start()
    FUSE(operations, mountpoint, foreground=True, nothreads=False, big_writes=True, use_ino=True, no_remote_lock=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
