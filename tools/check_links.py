#!/usr/bin/env python3
"""Checks the relative links of the documentation: every `[text](target)` in README.md,
CHANGELOG.md and docs/**/*.md whose target is not a URL must name an existing file or folder,
and a `#fragment` must name a heading of the Markdown file it points to (GitHub's anchors).
Links inside code (fenced blocks, `inline`) are not links and are skipped.

Usage: check_links.py   (from anywhere; exits 1 and lists the broken links)
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


def documents():
    yield from (ROOT / name for name in ("README.md", "CHANGELOG.md") if (ROOT / name).exists())
    yield from sorted((ROOT / "docs").rglob("*.md"))


def prose_lines(path):
    """The lines outside fenced code blocks, with inline code removed."""
    inside = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if FENCE.match(line):
            inside = not inside
            continue
        if not inside:
            yield number, re.sub(r"`[^`]*`", "", line)


def slug(heading):
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"`", "", heading).strip().lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def main():
    broken = []
    cache = {}
    for doc in documents():
        for number, line in prose_lines(doc):
            for target in LINK.findall(line):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                    continue  # a URL (https:, mailto:, …)
                file_part, _, fragment = target.partition("#")
                dest = doc if not file_part else (doc.parent / file_part).resolve()
                where = f"{doc.relative_to(ROOT)}:{number}: {target}"
                if not dest.exists():
                    broken.append(f"{where}: no such file")
                    continue
                if fragment and dest.suffix == ".md":
                    if dest not in cache:
                        cache[dest] = anchors(dest)
                    if fragment not in cache[dest]:
                        broken.append(f"{where}: no heading with that anchor")
    for line in broken:
        print(line, flush=True)
    if broken:
        sys.exit(f"check_links: {len(broken)} broken link(s)")
    print("check_links: every relative link resolves")


def anchors(path):
    """Anchors of a file's headings (inline code in a heading counts as its text)."""
    inside, seen, found = False, {}, set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            inside = not inside
            continue
        match = None if inside else HEADING.match(line)
        if match:
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


if __name__ == "__main__":
    main()
