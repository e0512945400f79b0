"""Rebuild benchmark/data/ and the IPIP task file from ../shared/data.

Run once by a maintainer (``python scripts/bundle_data.py``); the outputs are
committed so that a clone works without ../shared. gzip output is made
reproducible (mtime 0) so rerunning changes nothing.
"""

import gzip
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
OUT = ROOT / "benchmark" / "data"

FILES = {
    "big5_ipip50/data.csv": "ipip50/data.csv.gz",
    "big5_ipip50/codebook.txt": "ipip50/codebook.txt",
    "choices13k/c13k_problems.json": "choices13k/c13k_problems.json.gz",
    "choices13k/c13k_selections.csv": "choices13k/c13k_selections.csv.gz",
    "psych201_dezfouli2019/prompts.jsonl.zip": "psych201/dezfouli2019.jsonl.zip",
    "psych201_thoma2025riskychoice/prompts.jsonl": "psych201/thoma2025riskychoice.jsonl.gz",
    "psych201_franke2024bayesian/prompts.jsonl": "psych201/franke2024bayesian.jsonl.gz",
}


def main() -> int:
    """Copy and compress every file of FILES."""
    if not SHARED.is_dir():
        print(f"{SHARED} not found", file=sys.stderr)
        return 1
    for src, dst in FILES.items():
        target = OUT / dst
        target.parent.mkdir(parents=True, exist_ok=True)
        data = (SHARED / src).read_bytes()
        if dst.endswith(".gz"):
            with (
                target.open("wb") as raw,
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz,
            ):
                gz.write(data)
        else:
            shutil.copyfile(SHARED / src, target)
        print(f"{dst}: {len(data):,} → {target.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
