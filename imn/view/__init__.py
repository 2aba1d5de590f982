"""``imn view``: a self-contained, offline HTML viewer of a run's explanations.

:func:`write_report` reads a run folder (or a folder of runs, e.g. a reproduction under
``results/``) with :mod:`imn.view.collect`, encodes it compactly (:mod:`imn.view.encode`)
and writes one HTML file holding plotly.js, the viewer (``app.js``) and every ECG's data
(:mod:`imn.view.page`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

logger = logging.getLogger("imn")


def write_report(source: str | Path, out: str | Path | None = None, *, split: str = "test",
                 data: str | None = None, title: str | None = None) -> Path:
    """Write the viewer of every explained run under ``source`` to ``out`` (default
    ``source/report.html``) and return its path. ``data``: where the runs' data lives now
    (KIND:DIR), for signals in mV, as for ``imn explain``."""
    from imn.view.collect import read_runs
    from imn.view.page import report_payload, write_html

    started = time.perf_counter()
    source = Path(source)
    views = read_runs(source, split, data)
    out = Path(out) if out is not None else source / "report.html"
    title = title or f"Explanations of {source.resolve().name} ({split} split)"
    path = write_html(report_payload(views, title), out)
    logger.info("wrote %s (%.1f MB, %d runs, %d ECGs) in %.1f s", path, path.stat().st_size / 1e6,
                len(views), sum(len(v.ecgs) for v in views), time.perf_counter() - started)
    return path


__all__ = ["write_report"]
