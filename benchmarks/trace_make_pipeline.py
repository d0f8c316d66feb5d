"""Writes a ~20-step make pipeline (Python, shell tools, redirections) into a directory.

Used by bench_trace.py: word counting over generated text, split into chunks,
counted with shell tools and Python, merged, summarised and rendered.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

WORDS = ["shark", "ray", "reef", "kelp", "tide", "salt", "wave", "coral", "fin", "gill", "krill",
         "squid", "eel", "cod", "tuna", "whale", "seal", "crab", "clam", "shell", "sand", "foam",
         "deep", "blue"]


def write(root: Path, python: str, chunks: int = 6, lines: int = 4000) -> None:
    rng = random.Random(7)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(chunks):
        text = "\n".join(" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(lines))
        (root / f"text{i}.txt").write_text(text + "\n")
    (root / "stopwords.cfg").write_text("the\nand\nsalt\n")
    (root / "count.py").write_text(
        "import collections, sys\n"
        "c = collections.Counter(open(sys.argv[1]).read().split())\n"
        "stop = set(open('stopwords.cfg').read().split())\n"
        "for w, n in sorted(c.items()):\n"
        "    if w not in stop:\n"
        "        print(w, n)\n")
    (root / "merge.py").write_text(
        "import collections, sys\n"
        "c = collections.Counter()\n"
        "for f in sys.argv[1:]:\n"
        "    for line in open(f):\n"
        "        w, n = line.split()\n"
        "        c[w] += int(n)\n"
        "for w, n in c.most_common():\n"
        "    print(w, n)\n")
    (root / "render.py").write_text(
        "import sys\n"
        "rows = [l.split() for l in open(sys.argv[1])]\n"
        "width = max(int(n) for _, n in rows)\n"
        "for w, n in rows:\n"
        "    print(f'{w:>8} ' + '#' * (60 * int(n) // width))\n")
    rules = ["all: chart.txt summary.txt\n"]
    for i in range(chunks):
        rules.append(f"lower{i}.txt: text{i}.txt\n\ttr 'A-Z' 'a-z' < text{i}.txt > lower{i}.txt\n")
        rules.append(f"count{i}.txt: lower{i}.txt count.py stopwords.cfg\n"
                     f"\t{python} count.py lower{i}.txt > count{i}.txt 2>> build.log\n")
        rules.append(f"shell{i}.txt: lower{i}.txt\n"
                     f"\ttr -s ' ' '\\n' < lower{i}.txt | sort | uniq -c | sort -rn > shell{i}.txt\n")
    counts = " ".join(f"count{i}.txt" for i in range(chunks))
    shells = " ".join(f"shell{i}.txt" for i in range(chunks))
    rules.append(f"merged.txt: {counts} merge.py\n\t{python} merge.py {counts} > merged.txt\n")
    rules.append(f"shell_total.txt: {shells}\n\tcat {shells} | wc -l > shell_total.txt\n")
    rules.append("chart.txt: merged.txt render.py\n\t"
                 f"{python} render.py merged.txt > chart.txt\n")
    rules.append("summary.txt: merged.txt shell_total.txt\n\t"
                 "(head -5 merged.txt; cat shell_total.txt) > summary.txt\n")
    rules.append("clean:\n\trm -f lower*.txt count*.txt shell*.txt merged.txt chart.txt "
                 "summary.txt build.log *.intoto.jsonl\n")
    (root / "Makefile").write_text("\n".join(rules))


if __name__ == "__main__":
    write(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else sys.executable)
