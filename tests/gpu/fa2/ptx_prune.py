#!/usr/bin/env python3
"""Keep only some kernels of a PTX module (used by tests/gpu/fetch_fa2.sh).

    ptx_prune.py IN.ptx OUT.ptx NAME [NAME ...]

NAME is the mangled name of a .entry to keep.  Every other .entry is dropped,
and so is every .func that no kept function reaches (directly or through
another kept .func).  Declarations at file scope (.version, .target,
.address_size, .global/.const/.shared variables, .extern ...) are kept as they
are.  Fails (exit 2) if a NAME is not an .entry of IN.

The PTX that nvcc writes has one directive or instruction per line, with the
braces of a function body (and of the call scopes inside it) as tokens that we
count; comments are removed before counting.  Nothing here depends on what the
kernels compute.
"""
import re
import sys

_FUNC_START = re.compile(
    r"^\s*(?:\.visible\s+|\.weak\s+|\.extern\s+)*(\.entry|\.func)\s+"
    r"(?:\([^)]*\)\s*)?"            # .func (.param ... retval) name
    r"([A-Za-z_$%][\w$]*)")
_IDENT = re.compile(r"[A-Za-z_$][\w$]*")


def _strip_comments(line, in_block):
    """Return (code, in_block) with // and /* */ comments removed."""
    out = []
    i = 0
    n = len(line)
    while i < n:
        if in_block:
            j = line.find("*/", i)
            if j < 0:
                return "".join(out), True
            i = j + 2
            in_block = False
            continue
        if line.startswith("//", i):
            break
        if line.startswith("/*", i):
            in_block = True
            i += 2
            continue
        out.append(line[i])
        i += 1
    return "".join(out), in_block


def split_chunks(text):
    """Split PTX into top-level chunks: ('func', kind, name, is_def, text) or
    ('other', None, None, None, text)."""
    lines = text.splitlines(keepends=True)
    chunks = []
    i = 0
    in_block = False
    n = len(lines)
    while i < n:
        code, in_block2 = _strip_comments(lines[i], in_block)
        m = _FUNC_START.match(code) if not in_block else None
        if not m:
            chunks.append(("other", None, None, None, lines[i]))
            in_block = in_block2
            i += 1
            continue
        kind, name = m.group(1), m.group(2)
        start = i
        depth = 0
        opened = False
        is_def = None
        while i < n:
            code, in_block = _strip_comments(lines[i], in_block)
            for ch in code:
                if ch == "{":
                    depth += 1
                    opened = True
                elif ch == "}":
                    depth -= 1
                elif ch == ";" and depth == 0 and not opened:
                    is_def = False
            i += 1
            if is_def is False:
                break
            if opened and depth == 0:
                is_def = True
                break
        if is_def is None:
            raise SystemExit("ptx_prune: unterminated function %s" % name)
        chunks.append(("func", kind, name, is_def, "".join(lines[start:i])))
    return chunks


def prune(text, keep_entries):
    chunks = split_chunks(text)
    funcs = {}      # name -> list of chunk indexes
    entries = set()
    for idx, (typ, kind, name, _is_def, _body) in enumerate(chunks):
        if typ == "func":
            funcs.setdefault(name, []).append(idx)
            if kind == ".entry":
                entries.add(name)
    missing = [k for k in keep_entries if k not in entries]
    if missing:
        sys.stderr.write("ptx_prune: not an .entry of the input:\n")
        for k in missing:
            sys.stderr.write("  %s\n" % k)
        raise SystemExit(2)
    keep = set(keep_entries)
    work = list(keep_entries)
    while work:
        name = work.pop()
        for idx in funcs[name]:
            if not chunks[idx][3]:
                continue
            for ident in set(_IDENT.findall(chunks[idx][4])):
                if ident in funcs and ident not in keep and ident != name:
                    keep.add(ident)
                    work.append(ident)
    out = []
    for typ, _kind, name, _is_def, body in chunks:
        if typ == "other" or name in keep:
            out.append(body)
    return "".join(out), sorted(keep), len(entries)


def main(argv):
    if len(argv) < 4:
        sys.stderr.write(__doc__)
        return 2
    with open(argv[1], "r", encoding="utf-8", errors="surrogateescape") as f:
        text = f.read()
    pruned, kept, n_entries = prune(text, argv[3:])
    with open(argv[2], "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write(pruned)
    sys.stderr.write("ptx_prune: kept %d of %d entries (+%d .func), %d -> %d bytes\n"
                     % (len(argv) - 3, n_entries, len(kept) - (len(argv) - 3),
                        len(text), len(pruned)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
