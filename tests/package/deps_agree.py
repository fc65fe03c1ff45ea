#!/usr/bin/env python3
"""The dependency lists agree: tools/install-deps.sh, the README's Dependencies table,
debian/control's Build-Depends and meson's feature options.

  every package install-deps.sh installs is named in the README's table, and back;
  every Build-Depends package (less debhelper's own and pkgconf) is installed by
    install-deps.sh;
  every feature option in meson_options.txt but fuzz appears in the table's meson
    column as `NAME` (auto).
  deps_agree.py SOURCE_ROOT
Exit 0 pass, 1 fail."""
import os
import re
import sys

root = sys.argv[1]


def read(p):
    with open(os.path.join(root, p), encoding="utf-8") as f:
        return f.read()


errors = []
inst = re.search(r"packages=\((.*?)\n\)", read("tools/install-deps.sh"), re.S)
installed = inst.group(1).split() if inst else []
if not installed:
    errors.append("tools/install-deps.sh: no packages=( ... ) list")

readme = read("README.md")
start = readme.find("## Dependencies")
end = readme.find("\n## ", start + 1)
section = readme[start:end if end > 0 else None]
rows = [l for l in section.splitlines() if l.startswith("| `")]
table_pkgs, meson_col = set(), []
for row in rows:
    cells = [c.strip() for c in row.strip("|").split("|")]
    table_pkgs.update(re.findall(r"`([^`]+)`", cells[0]))
    if len(cells) > 2:
        meson_col.append(cells[2])
for p in installed:
    if p not in table_pkgs:
        errors.append(f"{p}: installed by tools/install-deps.sh, not in the README's table")
for p in sorted(table_pkgs):
    if p not in installed:
        errors.append(f"{p}: in the README's table, not installed by tools/install-deps.sh")

control = read("debian/control")
bd = re.search(r"^Build-Depends:(.*?)^\S", control, re.S | re.M)
build_deps = []
if bd:
    for item in bd.group(1).split(","):
        name = re.sub(r"\s*[(\[].*", "", item.strip(), flags=re.S)
        if name:
            build_deps.append(name)
for p in build_deps:
    if p.startswith(("debhelper", "dh-")) or p == "pkgconf":
        continue
    if p not in installed:
        errors.append(f"{p}: in debian/control's Build-Depends, not installed by tools/install-deps.sh")

options = re.findall(r"option\('([a-z0-9_]+)',\s*type:\s*'feature'", read("meson_options.txt"))
for o in options:
    if not any(f"`{o}` (auto)" in c for c in meson_col):
        errors.append(f"meson feature option {o}: not in the README table's meson column as `{o}` (auto)")

for e in errors:
    print("FAIL:", e)
if errors:
    sys.exit(1)
print(f"PASS: {len(installed)} packages, {len(build_deps)} Build-Depends, "
      f"{len(options)} feature options agree")
