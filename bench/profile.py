"""Summarise a py-spy raw profile (``run.py --profile DIR`` writes one per measured host run).

    python bench/profile.py DIR/inbound-sqlite.txt [--top 40] [--within NAME]

Prints, for each function, the share of samples it was on the stack (inclusive) and on top (self).
``--within`` keeps only the stacks that pass through a function whose name contains NAME.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)")
_PACKAGES = re.compile(r"\S*/(site-packages|lib/python3\.\d+)/")


def _frame(frame: str) -> str:
    return _PACKAGES.sub("", _LINE.sub(")", frame))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--within", default=None)
    args = parser.parse_args()
    inclusive: Counter[str] = Counter()
    on_top: Counter[str] = Counter()
    total = 0
    for line in args.profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = [_frame(f) for f in stack.split(";")]
        if args.within and not any(args.within in f for f in frames):
            continue
        total += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
        on_top[frames[-1]] += int(count)
    print(f"{total} samples{f' through {args.within!r}' if args.within else ''}\n\ninclusive:")
    for frame, count in inclusive.most_common(args.top):
        print(f"{count / total:6.1%}  {frame}")
    print("\nself:")
    for frame, count in on_top.most_common(args.top // 2):
        print(f"{count / total:6.1%}  {frame}")


if __name__ == "__main__":
    main()
