"""Watch job directories and call the one apply path when their manifests change.

watchdog reports file events from a thread of its own; they only mark the
directory as changed. A debounce thread waits until the directory has been
quiet for a moment (editors write in steps, `git checkout` drops many files
at once), then applies the whole directory again: apply is idempotent, so a
full rescan is always right and one call serves a burst of 500 files.
Hidden files, editors' temporary and swap files and the status directory
are ignored; an atomic rename onto `*.toml` counts as a change of that file.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import ObservedWatch

from queuectl.apply import is_manifest_name

QUIET = 0.03  # apply once the directory has been quiet this long...
MAX_DELAY = 0.3  # ...or at the latest this long after the first event


class _Handler(FileSystemEventHandler):
    def __init__(self, directories: set[str], changed: Callable[[], None]) -> None:
        self.directories = directories
        self.changed = changed

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        paths = [event.src_path, getattr(event, "dest_path", "")]
        for path in paths:
            path = os.fsdecode(path) if path else ""
            if path and self._relevant(path, event.is_directory):
                self.changed()
                return

    def _relevant(self, path: str, is_directory: bool) -> bool:
        parent, name = os.path.split(path)
        if path in self.directories:
            return True  # the directory itself moved or was deleted
        return parent in self.directories and not is_directory and is_manifest_name(name)


class Watcher:
    """Calls `apply()` after changes in `directories`, debounced, from a thread of its own."""

    def __init__(
        self,
        directories: Sequence[str],
        apply: Callable[[], None],
        on_error: Callable[[BaseException], None],
        quiet: float = QUIET,
        max_delay: float = MAX_DELAY,
    ) -> None:
        self.directories = {os.path.abspath(d) for d in directories}
        self.apply = apply
        self.on_error = on_error
        self.quiet = quiet
        self.max_delay = max_delay
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._first: float | None = None
        self._last = 0.0
        self._retry_at: float | None = None
        self._stopping = False
        self._observer = Observer()
        self._handler = _Handler(self.directories, self._changed)
        self._watches: dict[str, tuple[tuple[int, int] | None, ObservedWatch]] = {}
        self._thread = threading.Thread(target=self._loop, name="queuectl-watcher", daemon=True)

    def start(self) -> None:
        # The parents too: a jobs directory deleted and made again, or swapped in with a rename
        # (`mv new jobs.d`), is a new inode that its old watch no longer sees.
        for parent in sorted({os.path.dirname(d) for d in self.directories}):
            try:
                self._observer.schedule(self._handler, parent, recursive=False)
            except OSError:
                pass  # an unreadable parent: the directory's own watch still works
        self._refresh_watches()
        self._observer.start()
        self._thread.start()

    def _refresh_watches(self) -> None:
        """Watch each directory's current inode (again, when it was replaced)."""
        for directory in sorted(self.directories):
            try:
                info = os.stat(directory)
                identity: tuple[int, int] | None = (info.st_dev, info.st_ino)
            except OSError:
                identity = None
            old = self._watches.get(directory)
            if old is not None and old[0] == identity:
                continue
            if old is not None:
                try:
                    self._observer.unschedule(old[1])
                except (KeyError, OSError):
                    pass  # its emitter is gone with the old directory
                del self._watches[directory]
            if identity is not None:
                try:
                    self._watches[directory] = (identity, self._observer.schedule(self._handler, directory))
                except OSError:
                    pass  # gone again: the parent's watch brings us back

    def stop(self) -> None:
        self._stopping = True
        self._event.set()
        self._observer.stop()
        self._observer.join(timeout=5)
        self._thread.join(timeout=5)

    def _changed(self) -> None:
        now = time.monotonic()
        with self._lock:
            if self._first is None:
                self._first = now
            self._last = now
        self._event.set()

    def recheck(self, delay: float) -> None:
        """Apply again in `delay` seconds even without an event (a file may still be being written)."""
        with self._lock:
            self._retry_at = time.monotonic() + delay
        self._event.set()

    def _due(self) -> float | None:
        """Seconds until the pending apply is due, or None when nothing is pending."""
        with self._lock:
            moments = []
            if self._first is not None:
                moments.append(min(self._last + self.quiet, self._first + self.max_delay))
            if self._retry_at is not None:
                moments.append(self._retry_at)
            if not moments:
                return None
            return max(0.0, min(moments) - time.monotonic())

    def _loop(self) -> None:
        while not self._stopping:
            wait = self._due()
            if wait is None:
                self._event.wait()
                self._event.clear()
                continue
            if wait > 0:
                self._event.wait(wait)
                self._event.clear()
                continue
            with self._lock:
                self._first = self._retry_at = None
            try:
                self._refresh_watches()
                self.apply()
            except Exception as exc:  # reported; the watcher goes on
                self.on_error(exc)
