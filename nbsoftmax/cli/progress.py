"""Progress on stderr for long commands: shown only when stderr is a terminal.

tqdm draws it when installed (``pip install "nbsoftmax[score]"``); otherwise a one-line
fallback redraws itself with ``\\r`` at most a few times a second. When stderr is not a
terminal (a pipe, a log file, CI) nothing is drawn.
"""

import sys
import time


class _Silent:
    def update(self, n):
        pass

    def close(self):
        pass


class _Line:
    """The fallback bar: ``score  45% 1,234/2,742 MB  310 MB/s`` (counts are whole bytes)."""

    _INTERVAL = 0.2  # seconds between redraws

    def __init__(self, total, desc, stream):
        self.total, self.desc, self.stream = int(total), desc, stream
        self.done = 0
        self.start = self._last = time.perf_counter()

    def update(self, nbytes):
        self.done += int(nbytes)
        now = time.perf_counter()
        if now - self._last >= self._INTERVAL or self.done >= self.total:
            self._last = now
            self._draw(now)

    def _draw(self, now):
        rate = self.done / max(now - self.start, 1e-9)
        pct = 100 * self.done // self.total if self.total else 100
        self.stream.write(f"\r{self.desc} {pct:3d}% {self.done / 1e6:,.0f}/{self.total / 1e6:,.0f} "
                          f"MB  {rate / 1e6:,.0f} MB/s")
        self.stream.flush()

    def close(self):
        self._draw(time.perf_counter())
        self.stream.write("\n")
        self.stream.flush()


def progress(total_bytes, desc, stream=None, use_tqdm=True):
    """An object with ``update(nbytes)`` and ``close()``: a bar counting bytes (shown in MB
    and MB/s) on a terminal, silent elsewhere.

    Examples
    --------
    >>> import io
    >>> bar = progress(10**6, "score", stream=io.StringIO())  # not a terminal: silent
    >>> bar.update(10**6); bar.close()
    """
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    if not (isatty and isatty()):
        return _Silent()
    if use_tqdm:
        try:
            from tqdm import tqdm
        except ImportError:
            pass
        else:  # whole bytes, scaled by tqdm to kB/MB/GB (powers of 1000, as --memory-limit)
            return tqdm(total=int(total_bytes), unit="B", unit_scale=True, unit_divisor=1000,
                        desc=desc, file=stream, dynamic_ncols=True)
    return _Line(total_bytes, desc, stream)
