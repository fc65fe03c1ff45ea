#!/usr/bin/env python3
"""Writes a directory tree as a cpio archive in the kernel's initramfs format (newc) to
stdout: files, directories and symbolic links, owned by root, times kept.
  mkcpio.py DIR | gzip > initrd.gz"""
import os
import stat
import sys


def header(name: bytes, st, size: int, ino: int) -> bytes:
    fields = [ino, st.st_mode, 0, 0, 1, int(st.st_mtime), size, 0, 0, 0, 0, len(name) + 1, 0]
    return b"070701" + b"".join(b"%08X" % f for f in fields) + name + b"\0"


def pad(n: int) -> bytes:
    return b"\0" * ((4 - n % 4) % 4)


def main() -> None:
    root = sys.argv[1]
    out = sys.stdout.buffer
    ino = 1
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for n in sorted(dirnames) + sorted(filenames):
            entries.append(os.path.join(dirpath, n))
    for path in entries:
        rel = os.path.relpath(path, root).encode()
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            data = os.readlink(path).encode()
        elif stat.S_ISREG(st.st_mode):
            with open(path, "rb") as f:
                data = f.read()
        elif stat.S_ISDIR(st.st_mode):
            data = b""
        else:
            continue
        h = header(rel, st, len(data), ino)
        out.write(h + pad(len(h)) + data + pad(len(data)))
        ino += 1
    h = header(b"TRAILER!!!", os.stat(root), 0, 0)
    out.write(h + pad(len(h)))


if __name__ == "__main__":
    main()
