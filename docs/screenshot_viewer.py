"""The README's picture of ``imn view``: a screenshot of a report page, as a reader sees it.

    python docs/screenshot_viewer.py --report results/synthetic/report.html \
        --model imn_stable --finding STE --out docs/imn_view.png

opens the page in headless Chromium (:class:`imn.view.chromium.HeadlessPage`), selects the
model's first explained ECG whose true label and prediction both contain ``--finding`` (or
the ECG ``--ecg-id``), and writes the top ``--height`` pixels of the page. ``--list`` prints
the model's ECGs instead. The page must render without a JavaScript error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from imn.view.chromium import HeadlessPage

READY = "document.body.dataset.ready === '1'"


def _options(page: HeadlessPage, select_id: str) -> list[tuple[str, str]]:
    """``(value, text)`` of every option of a ``<select>``."""
    return page.evaluate(f"Array.from(document.getElementById('{select_id}').options)"
                         ".map(o => [o.value, o.text])")


def _select(page: HeadlessPage, select_id: str, value: str) -> None:
    page.evaluate(f"(s => {{ s.value = {json.dumps(value)}; s.dispatchEvent(new Event('change')); }})"
                  f"(document.getElementById('{select_id}'))")


def _choose_ecg(options: list[tuple[str, str]], finding: str | None, ecg_id: int | None) -> tuple[str, str]:
    for value, text in options:
        if ecg_id is not None and text.startswith(f"ECG {ecg_id} "):
            return value, text
        if ecg_id is None and finding:
            truth = text.split(" · true ", 1)[-1].split(" · ")[0]
            predicted = text.split(" · predicted ", 1)[-1].split(" (")[0]
            if finding in truth.split(", ") and finding in predicted.split(", "):
                return value, text
    raise SystemExit(f"no ECG matches (finding {finding!r}, id {ecg_id}); use --list")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", type=Path, required=True, help="an imn view / imn reproduce report.html")
    parser.add_argument("--model", required=True, help="the run to show (its name in the Model menu)")
    parser.add_argument("--finding", help="first ECG truly showing and predicted as this class")
    parser.add_argument("--ecg-id", type=int, help="or this ECG id")
    parser.add_argument("--out", type=Path, default=Path("docs/imn_view.png"))
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1150)
    parser.add_argument("--list", action="store_true", help="print the model's ECGs and stop")
    args = parser.parse_args(argv)

    with HeadlessPage(width=args.width, height=args.height) as page:
        page.open(args.report, READY)
        runs = [value for value, text in _options(page, "run-select")
                if text.split(" (")[0] == args.model]
        if not runs:
            raise SystemExit(f"{args.report} has no run {args.model!r}: "
                             f"{[text for _, text in _options(page, 'run-select')]}")
        _select(page, "run-select", runs[0])
        options = _options(page, "ecg-select")
        if args.list:
            print("\n".join(text for _, text in options))
            return 0
        value, text = _choose_ecg(options, args.finding, args.ecg_id)
        _select(page, "ecg-select", value)
        page.wait_for(f"document.body.dataset.ecg === '{text.split()[1]}'")
        page.screenshot(args.out, full_page=False)
        if page.errors:
            raise SystemExit(f"the page reported errors: {page.errors}")
    print(f"{args.out}: {args.model}, {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
