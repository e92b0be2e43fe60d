"""Run every refusal table (the ``tests/test_edges_*.py`` modules) and print what each call
did, counted per surface: the figure behind "0 silent acceptances, 0 generic errors, 0 secrets
printed, 0 damaged stores read as empty".

    python tests/edge_probe.py            # the counts, then every row that is not as it should be
    python tests/edge_probe.py --all      # every row

Each module gives ``probe(root) -> [(surface, row id, word, detail)]``; the words are those of
``edge_table`` (named, silent, generic, unnamed) and, for the secret and damage tables, what
those check (hidden/printed, refused/read-as-empty).
"""

from __future__ import annotations

import argparse
import collections
import importlib
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).parent
GOOD = {"named", "hidden", "refused", "survived"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--all", action="store_true", help="print every row, not only the bad")
    parser.add_argument("modules", nargs="*", help="test_edges_* module names (default: all)")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    names = args.modules or sorted(p.stem for p in HERE.glob("test_edges_*.py"))
    rows = []
    for name in names:
        module = importlib.import_module(name)
        with tempfile.TemporaryDirectory(prefix="jinarag-probe-") as root:
            rows += module.probe(Path(root))
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for surface, _, word, _ in rows:
        counts[surface][word] += 1
    words = sorted({word for _, _, word, _ in rows}, key=lambda w: (w not in GOOD, w))
    print("| surface | cases | " + " | ".join(words) + " |")
    print("|---|---:|" + "---:|" * len(words))
    for surface, counter in counts.items():
        cells = " | ".join(str(counter[word]) for word in words)
        print(f"| {surface} | {sum(counter.values())} | {cells} |")
    total = collections.Counter(word for _, _, word, _ in rows)
    print(f"| all | {len(rows)} | " + " | ".join(str(total[w]) for w in words) + " |")
    print()
    for surface, row_id, word, detail in rows:
        if args.all or word not in GOOD:
            print(f"[{word}] {surface}: {row_id}: {detail[:300]}")


if __name__ == "__main__":
    main()
