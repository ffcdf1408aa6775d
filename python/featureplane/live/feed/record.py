"""Recording a live run in the recorder format research replay reads.

One gzip file per symbol, `<dir>/<market>-<symbol>-<start_ts_ns>.gz`, one line per message the
live path applied, `<local_ts_ns> <json>`, in the order it applied them: the stream messages as
they came off the wire, each REST snapshot where it joined the stream (its marker), the diffs
held during a sync right after their snapshot (each with its own receive time). Research
replay of a recording (`featureplane replay DIR`) therefore feeds its parser the same lines in
the same order as the live run did, and gives the same frames.
"""

from __future__ import annotations

import gzip
import time
from os import PathLike
from pathlib import Path

from featureplane.live.wire import Market


class Recorder:
    """Writes recorder lines per symbol; `close()` flushes and ends every gzip member."""

    def __init__(self, directory: str | PathLike[str], markets: dict[str, Market]) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.markets = markets
        self.start_ts = time.time_ns()
        self._files: dict[str, gzip.GzipFile] = {}
        self.lines = 0
        self.paths: list[Path] = []

    def _file(self, symbol: str) -> gzip.GzipFile:
        f = self._files.get(symbol)
        if f is None:
            path = self.dir / f"{self.markets[symbol]}-{symbol.lower()}-{self.start_ts}.gz"
            # Held open for the run (closed by `close`), not per write.
            f = gzip.open(path, "wb", compresslevel=6)  # noqa: SIM115
            self._files[symbol] = f
            self.paths.append(path)
        return f

    def write(self, symbol: str, lines: list[tuple[int, bytes]]) -> None:
        f = self._file(symbol)
        f.write(b"".join(b"%d %b\n" % (ts, raw) for ts, raw in lines))
        self.lines += len(lines)

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()
