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
    """The fallback bar: ``score  45% 1,234/2,742 MB  310 MB/s``."""

    _INTERVAL = 0.2  # seconds between redraws

    def __init__(self, total, unit, desc, stream):
        self.total, self.unit, self.desc, self.stream = total, unit, desc, stream
        self.done = 0
        self.start = self._last = time.perf_counter()

    def update(self, n):
        self.done += n
        now = time.perf_counter()
        if now - self._last >= self._INTERVAL or self.done >= self.total:
            self._last = now
            self._draw(now)

    def _draw(self, now):
        rate = self.done / max(now - self.start, 1e-9)
        pct = 100.0 * self.done / self.total if self.total else 100.0
        self.stream.write(f"\r{self.desc} {pct:3.0f}% {self.done:,.0f}/{self.total:,.0f} "
                          f"{self.unit}  {rate:,.0f} {self.unit}/s")
        self.stream.flush()

    def close(self):
        self._draw(time.perf_counter())
        self.stream.write("\n")
        self.stream.flush()


def progress(total, unit, desc, stream=None, use_tqdm=True):
    """An object with ``update(n)`` and ``close()``: a bar on a terminal, silent elsewhere."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    if not (isatty and isatty()):
        return _Silent()
    if use_tqdm:
        try:
            from tqdm import tqdm
        except ImportError:
            pass
        else:
            return tqdm(total=total, unit=f" {unit}", desc=desc, file=stream,
                        dynamic_ncols=True)
    return _Line(total, unit, desc, stream)
