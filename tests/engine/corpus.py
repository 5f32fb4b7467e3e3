"""Real English text found on the machine (licences and package documentation), for the
teacher-forced fidelity measurement. Deterministic: the same files in the same order on the
same machine, so every process of a run sees the same windows."""

import glob
import hashlib
import os
import re
import site
import sys

_PATTERNS = (
    "/usr/share/common-licenses/*",
    "/usr/share/doc/*/copyright",
    "/usr/share/doc/*/README*",
    "/usr/lib/python3*/LICENSE.txt",
    "{site}/*/LICENSE*",
    "{site}/*.dist-info/LICENSE*",
    "{site}/*.dist-info/licenses/*",
    "{site}/*.dist-info/METADATA",
)


def _prose_ratio(text):
    letters = sum(c.isalpha() or c == " " for c in text)
    return letters / max(1, len(text))


def collect(max_bytes=4 << 20, min_file=2000):
    """[(path, text)] of prose-like files, deduplicated by content, licences first."""
    sites = sorted(set(site.getsitepackages() + [site.getusersitepackages()] +
                       [p for p in sys.path if p.endswith("-packages")]))
    paths = []  # in pattern order (licences first), sorted within a pattern
    for pat in _PATTERNS:
        for s in (sites if "{site}" in pat else [None]):
            paths.extend(p for p in sorted(glob.glob(pat.format(site=s) if s else pat))
                         if p not in paths)
    seen, out, total = set(), [], 0
    for p in paths:
        try:
            if not os.path.isfile(p) or os.path.getsize(p) < min_file:
                continue
            text = open(p, encoding="utf-8", errors="strict").read()
        except (OSError, UnicodeDecodeError):
            continue
        text = re.sub(r"[ \t]+", " ", text)
        if _prose_ratio(text) < 0.8:
            continue
        h = hashlib.sha256(text.encode()).hexdigest()
        if h in seen:
            continue
        seen.add(h)
        out.append((p, text))
        total += len(text)
        if total >= max_bytes:
            break
    return out


def windows(tokenizer, n, length, seed_text_files=None):
    """n windows of `length` token ids from the concatenated corpus, evenly spaced; also
    returns the files used."""
    files = seed_text_files or collect()
    ids, used = [], []
    for p, text in files:
        ids.extend(tokenizer.encode(text + "\n\n").ids)
        used.append(p)
        if len(ids) >= length * n * 1.2 and len(used) >= 4:
            break
    if len(ids) < length + n:
        raise SystemExit(f"corpus too small: {len(ids)} tokens from {len(used)} files")
    step = max(1, (len(ids) - length) // max(1, n))
    return [ids[i * step:i * step + length] for i in range(n)], used, len(ids)
