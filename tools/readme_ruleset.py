#!/usr/bin/env python3
"""README's sample rulesets, copied from the compiler's golden files so they cannot go stale.

A block in README.md between
    <!-- golden: tests/golden/NAME.nft [chain CHAIN...] -->
and
    <!-- /golden -->
is a fenced copy of that golden file (which test_compile checks against the compiler), or of
just the named chains of it. `tools/readme_ruleset.py` rewrites the blocks; with --check it
only compares and exits 1 naming the stale block (make check runs that).
"""
import re
import sys

BLOCK = re.compile(r"(<!-- golden: (\S+)((?: chain \S+)*) -->\n)(.*?)(<!-- /golden -->)", re.S)


def chains(text, names):
    """The named chains of an nft listing, in the file's order, one blank line apart."""
    out, keep = [], False
    for line in text.splitlines(keepends=True):
        m = re.match(r"\tchain (\S+) \{", line)
        if m:
            keep = m.group(1) in names
        if keep:
            out.append(line)
            if line == "\t}\n":
                out.append("\n")
                keep = False
    return "".join(out).rstrip("\n") + "\n"


def render(m, root):
    path, sel = m.group(2), m.group(3).split()[1::2]
    with open(f"{root}/{path}") as f:
        text = f.read()
    if sel:
        text = chains(text, set(sel))
    return f"{m.group(1)}```\n{text}```\n{m.group(5)}"


def main():
    check = "--check" in sys.argv[1:]
    root = sys.argv[0].rsplit("/tools/", 1)[0] if "/tools/" in sys.argv[0] else "."
    readme = f"{root}/README.md"
    with open(readme) as f:
        old = f.read()
    new = BLOCK.sub(lambda m: render(m, root), old)
    if not BLOCK.search(old):
        sys.exit(f"{readme}: no <!-- golden: ... --> block")
    if check:
        for a, b in zip(BLOCK.finditer(old), BLOCK.finditer(new)):
            if a.group(0) != b.group(0):
                line = old.count("\n", 0, a.start()) + 1
                sys.exit(f"{readme}:{line}: sample of {a.group(2)} is stale: run tools/readme_ruleset.py")
        return
    if new != old:
        with open(readme, "w") as f:
            f.write(new)


main()
