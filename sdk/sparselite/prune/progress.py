"""One progress line on stderr: `label [#####.....] done/total  density 0.431  loss 0.0123`."""
import sys
import time


class Progress:
    """Redrawn in place on a terminal (at most every `interval` seconds); elsewhere (logs, CI) a
    line at each tenth of the way."""

    def __init__(self, total, label, unit="steps", stream=None, interval=0.2):
        self.total, self.label, self.unit = max(1, int(total)), label, unit
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval
        self._last_draw = 0.0
        self._last_tenth = -1
        self._open = False

    def update(self, done, **fields):
        self.total = max(self.total, done)
        now = time.monotonic()
        if self.tty:
            if done < self.total and now - self._last_draw < self.interval:
                return
            self.stream.write("\r" + self._line(done, fields) + "\033[K")
            self._open = True
        else:
            tenth = 10 * done // self.total
            if tenth == self._last_tenth:
                return
            self._last_tenth = tenth
            self.stream.write(self._line(done, fields) + "\n")
        self._last_draw = now
        self.stream.flush()

    def close(self):
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False

    def _line(self, done, fields):
        width = 24
        filled = width * done // self.total
        parts = [f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} {self.unit}"]
        for name, value in fields.items():
            if value is not None:
                parts.append(f"{name} {value:.4g}" if isinstance(value, float) else f"{name} {value}")
        return "  ".join(parts)
