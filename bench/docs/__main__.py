"""python -m bench.docs [--check] [--root DIR] [--reference RUN] [--previous RUN]
[--placements DIR] [--microbench FILE] [--benchmarks DIR] [--faults FILE]

Regenerates the marked sections of README.md, docs/*.md and bench/README.md from the
committed artifacts (`make docs`); --check changes nothing and exits 1 when a doc differs
from what the artifacts give. Every artifact path may be given (an older or perturbed
copy); by default the committed ones are read."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.docs.generate import DOCS, SECTIONS, Sources, placed, stale, write


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.docs", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path("."))
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a doc is not what the artifacts give")
    for name in ("reference", "previous", "placements", "microbench", "benchmarks", "faults"):
        parser.add_argument(f"--{name}", type=Path, help=f"the {name} artifact's path")
    args = parser.parse_args(argv)
    sources = Sources.default(args.root)
    changes = {k: getattr(args, k).resolve() for k in ("reference", "previous", "placements",
                                                      "microbench", "benchmarks", "faults")
               if getattr(args, k) is not None}
    sources = sources.but(**changes)
    where = placed(sources.root)
    unplaced = sorted(set(SECTIONS) - set(where))
    if unplaced:
        print(f"sections generated but placed in no doc: {', '.join(unplaced)}", file=sys.stderr)
        return 2
    if args.check:
        differ = stale(sources)
        for name in differ:
            print(f"{name}: out of date (run `make docs`)")
        return 1 if differ else 0
    changed = write(sources)
    print(f"make docs: {len(where)} sections in {', '.join(DOCS)}; "
          + (f"rewritten: {', '.join(changed)}" if changed else "nothing changed"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
