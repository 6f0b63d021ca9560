"""What a pool needs of its machine before it starts: pidfds, a private log directory, enough descriptors."""

from __future__ import annotations

import os
import resource
import stat

from queuectl.errors import QueueError


def check_pidfd() -> None:
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (OSError, AttributeError) as exc:
        raise QueueError(
            f"cannot watch processes: pidfd_open is unavailable ({exc}); Linux 5.3 or newer is needed"
        ) from None


def check_log_dir(path: str) -> None:
    """The log directory: a real directory of ours that only we can enter (logs hold job output)."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)  # its parent is the store's or the private state directory
        info = os.lstat(path)
        if not stat.S_ISDIR(info.st_mode):
            raise QueueError(f"refused: the log directory {path} is not a directory (a symbolic link?); remove it")
        if info.st_uid != os.geteuid():
            raise QueueError(f"refused: the log directory {path} belongs to uid {info.st_uid}, not to you; remove it")
        if info.st_mode & 0o077:
            os.chmod(path, 0o700)  # ours, but open to others (made by an older queuectl or by hand)
        probe = os.path.join(path, f".probe-{os.getpid()}")
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
        os.unlink(probe)
    except OSError as exc:
        raise QueueError(f"cannot use the log directory {path}: {exc.strerror or exc}") from None


def raise_fd_limit() -> None:
    """Each slot needs a few descriptors: take the hard limit, as servers do."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
