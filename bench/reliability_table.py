"""Merge two runs of bench/reliability_cases.py (before / after) into one markdown table.

    python bench/reliability_table.py bench/results/reliability_before.json bench/results/reliability_after.json
"""
from __future__ import annotations

import json
import re
import sys


def clean(text: str) -> str:
    text = re.sub(r"/tmp/tagwise-reliab-[^/ ]+/", "…/", text)
    return text.replace("|", "\\|").replace("\n", " ")


def main() -> None:
    before = json.load(open(sys.argv[1]))["cases"]
    after = json.load(open(sys.argv[2]))["cases"]
    print("| case | before (1aeb36c) | after |\n|---|---|---|")
    for key in after:
        print(f"| {clean(key)} | {clean(before.get(key, '(not run)'))} | {clean(after[key])} |")


if __name__ == "__main__":
    main()
