"""One writer per run directory: an advisory lock on ``<run_dir>/.lock`` held while a process
trains or resumes it.

Two processes writing one run directory (two ``--resume``, or a run and a resume) would interleave
checkpoints and metrics rows. The lock is an ``flock`` on an open file, so the kernel releases it
when its holder dies however it dies: ``kill -9`` never leaves a stale lock. Reading commands
(``goalax eval``, ``render``, ``goalax.load``) never take it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator

from goalax.errors import ConfigError

LOCK_NAME = ".lock"


def _in_use(run_dir: str, fd: int) -> ConfigError:
    """The refusal for a lock held by another process, naming it from the pid it wrote."""
    os.lseek(fd, 0, os.SEEK_SET)
    pid = os.read(fd, 32).decode(errors="replace").strip()
    holder = f"process {pid}" if pid.isdigit() else "another process"
    return ConfigError(
        f"run directory {run_dir} is in use by {holder}; wait for it to finish or stop it"
    )


def _try_lock(run_dir: str) -> int:
    """An fd of the run's lock file holding its exclusive lock; ConfigError if it is held.

    The file is removed on release; a process that locked a file just removed (its inode no
    longer at the path) tries again, so two processes never hold two different files.
    """
    path = os.path.join(run_dir, LOCK_NAME)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
            refusal = _in_use(run_dir, fd)
            os.close(fd)
            raise refusal from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


@contextlib.contextmanager
def hold(run_dir: str, enabled: bool = True) -> Iterator[None]:
    """Hold ``run_dir``'s lock for the body (``enabled=False``: do nothing, e.g. on processes
    that do not write the run directory). Raises ConfigError naming the holder's pid when
    another process holds it."""
    if not enabled:
        yield
        return
    fd = _try_lock(run_dir)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(run_dir, LOCK_NAME))
        os.close(fd)


def check_free(run_dir: str) -> None:
    """Raise the in-use ConfigError if another process holds ``run_dir``'s lock; create
    nothing."""
    path = os.path.join(run_dir, LOCK_NAME)
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise _in_use(run_dir, fd) from None
    finally:
        os.close(fd)
