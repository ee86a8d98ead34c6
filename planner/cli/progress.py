"""Hashing and upload progress on stderr: click's progress bar on a terminal, a plain line
every tenth (or every 10 s) in CI logs, nothing with --quiet. The CLI decides whether to show
them; the scanner and the executor only call what they are given."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, Callable, TextIO

import click

from planner.core.words import plural
from planner.plan.render import human_bytes

LINE_EVERY_SECONDS = 10.0


class UploadProgress:
    def __init__(
        self,
        files: int,
        total_bytes: int,
        stream: TextIO | None = None,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.files, self.total = files, total_bytes
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.clock = clock
        self.done_files = self.done_bytes = 0
        self._lock = threading.Lock()
        self._bar: Any = None
        self._next_tenth = 1
        self._last_line = clock()

    def __enter__(self) -> "UploadProgress":
        if self.tty and self.files:
            self._bar = click.progressbar(
                length=max(1, self.total), label=f"uploading {plural(self.files, 'file')}",
                file=self.stream, show_eta=True, show_percent=True,
            ).__enter__()
        return self

    def __call__(self, size: int) -> None:
        """One file uploaded, of ``size`` bytes."""
        with self._lock:
            self.done_files += 1
            self.done_bytes += size
            if self._bar is not None:
                self._bar.update(size)
                return
            tenth = self.done_files * 10 // max(1, self.files)
            now = self.clock()
            if tenth >= self._next_tenth or now - self._last_line >= LINE_EVERY_SECONDS:
                self._next_tenth = tenth + 1
                self._last_line = now
                print(
                    f"uploaded {self.done_files:,}/{plural(self.files, 'file')} "
                    f"({human_bytes(self.done_bytes)} of {human_bytes(self.total)})",
                    file=self.stream, flush=True,
                )

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


class HashProgress:
    """Hashing progress of the build, for ``build_plan(progress=...)``: called by the scanner
    with (files hashed, bytes hashed, files in all), one call at a time, from the end of the
    walk, at most every hundredth of the files or every 0.1 s (see ``manifests.scan.scan``).
    A call after the one that reached the total begins a new scan (a deploy plans again when
    the target changed meanwhile). Used as a context manager, so that a bar left unfinished
    by an error ends its line."""

    def __init__(
        self,
        stream: TextIO | None = None,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.clock = clock
        self._bar: Any = None
        self._start()

    def _start(self) -> None:
        self.files = self.bytes = self.total = 0
        self._finished = False
        self._walking = False
        self._next_tenth = 1
        self._last_line = self.clock()

    def __enter__(self) -> "HashProgress":
        return self

    def __call__(self, files: int, nbytes: int, total: int) -> None:
        if self._finished:
            self._start()
        if not total:  # a large build, still being walked: the number of files is not known
            self._so_far(files, nbytes)
            return
        if self._walking:
            self._walking = False
            if self.tty:
                self.stream.write("\n")
        step, self.files, self.bytes, self.total = files - self.files, files, nbytes, total
        if self.tty:
            if self._bar is None:
                self._bar = click.progressbar(
                    length=max(1, total), label=f"hashing {plural(total, 'file')}",
                    file=self.stream, show_eta=True, show_percent=True,
                ).__enter__()
            self._bar.update(step)
        else:
            tenth = files * 10 // max(1, total)
            now = self.clock()
            if tenth >= self._next_tenth or now - self._last_line >= LINE_EVERY_SECONDS:
                self._next_tenth = tenth + 1
                self._last_line = now
                print(f"hashed {files:,}/{plural(total, 'file')} ({human_bytes(nbytes)})",
                      file=self.stream, flush=True)
        if files >= total:
            self._finished = True
            self._close()

    def _so_far(self, files: int, nbytes: int) -> None:
        """While a large build is walked in parts (0 files in all): on a terminal one line
        written over; in CI logs a line every LINE_EVERY_SECONDS."""
        self.files, self.bytes = files, nbytes
        now = self.clock()
        if self.tty:
            self._walking = True
            self.stream.write(f"\rhashed {files:,} files ({human_bytes(nbytes)}), still walking")
            self.stream.flush()
        elif now - self._last_line >= LINE_EVERY_SECONDS:
            self._walking = True
            self._last_line = now
            print(f"hashed {files:,} files so far ({human_bytes(nbytes)}), still walking",
                  file=self.stream, flush=True)

    def _close(self) -> None:
        if self._walking and self.tty:
            self._walking = False
            self.stream.write("\n")
        if self._bar is not None:
            bar, self._bar = self._bar, None
            bar.__exit__(None, None, None)

    def __exit__(self, *exc: Any) -> None:
        self._close()
