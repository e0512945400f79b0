"""Render a report's report.html headless in Debian's chromium and save a PNG.

Usage: python scripts/report_screenshot.py REPORT.zip OUT.png [--height 2200] [--start TEXT]

The HTML is self-contained (plots as data URIs), so the page is opened from a file with
no network; the screenshot is ``--height`` pixels of a 1200 px wide page, from the top or
from the first section heading that contains ``--start``.
"""

import argparse
import tempfile
import zipfile
from pathlib import Path


def main() -> None:
    """Unpack report.html, open it in chromium, write the screenshot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zip", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--height", type=int, default=2200)
    parser.add_argument("--start", default="", help="begin at the heading containing this")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        page_file = Path(tmp) / "report.html"
        with zipfile.ZipFile(args.zip) as z:
            page_file.write_bytes(z.read("report.html"))
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium)
            page = browser.new_page(viewport={"width": 1200, "height": args.height})
            page.goto(page_file.as_uri())
            top = 0
            if args.start:
                heading = page.locator("h2", has_text=args.start).first
                top = heading.bounding_box()["y"] - 10
            page.screenshot(
                path=str(args.out),
                full_page=True,
                clip={"x": 0, "y": top, "width": 1200, "height": args.height},
            )
            browser.close()
    print(args.out)


if __name__ == "__main__":
    main()
