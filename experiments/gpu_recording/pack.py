"""Split a wheel folder into parts that fit one device call, and put it back together there.

    python experiments/gpu_recording/pack.py pack  [WHEELS [PARTS]] [--part-mib 54]   # here
    python experiments/gpu_recording/pack.py plan  [PARTS]                            # here
    python experiments/gpu_recording/pack.py stash PARTS STORE                        # device
    python experiments/gpu_recording/pack.py unpack STORE WHEELS_OUT                  # device

``pack`` writes the ``carry`` wheels of ``wheels.lock`` (from WHEELS, default ``.wheels/whl``) as
one byte stream, in lock order, cut into ``partNNN`` files of at most ``--part-mib`` MiB in PARTS
(default ``.wheels/parts``), plus ``manifest.json``: size and sha256 of every part and of every
wheel with its offset in the stream. A device call carries one part and the manifest (the device
tool's limit, 64 MiB a call, counts the travelling working tree too: ``plan`` prints both and
which part goes in which call). On the device ``stash`` checks each arrived part against the
manifest and copies it to STORE (outside the repository copy); ``unpack`` checks that all parts
are there, cuts the stream back into wheels and checks each wheel's sha256. Standard library only
(it runs under the device's python3 too).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
LOCK = HERE / "wheels.lock"
FORMAT = "simroute-wheel-parts/1"
MIB = 1 << 20
CALL_LIMIT_MIB = 64  # the device tool: working tree + carried paths, per call
CHUNK = MIB


class PackError(Exception):
    """A missing, changed or corrupt wheel or part (message says which)."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for b in iter(lambda: f.read(CHUNK), b""):
            h.update(b)
    return h.hexdigest()


def locked_wheels(lock: Path = LOCK) -> list[tuple[str, int, str]]:
    """(file, bytes, sha256) of the lock's ``carry`` rows, in lock order."""
    rows = []
    for line in lock.read_text().splitlines():
        f = line.split("\t")
        if line.startswith("#") or f[0] != "carry":
            continue
        rows.append((f[5], int(f[3]), f[4]))
    return rows


def _stream(paths: list[Path]) -> Iterator[bytes]:
    for p in paths:
        with p.open("rb") as f:
            yield from iter(lambda: f.read(CHUNK), b"")


def pack(wheel_dir: Path, out: Path, part_bytes: int, wheels: list[tuple[str, int, str]]) -> dict[str, Any]:
    """Write ``partNNN`` + ``manifest.json`` for ``wheels`` (checked against their size/sha256)."""
    if part_bytes < 1:
        raise PackError(f"part size must be >= 1 byte, got {part_bytes}")
    entries, offset = [], 0
    for name, size, sha in wheels:
        p = wheel_dir / name
        if not p.is_file():
            raise PackError(f"{p}: missing (run fetch_wheels.sh)")
        if p.stat().st_size != size or sha256_file(p) != sha:
            raise PackError(f"{p}: size or sha256 differs from the lock")
        entries.append({"file": name, "bytes": size, "sha256": sha, "offset": offset})
        offset += size
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("part[0-9][0-9][0-9]"):
        old.unlink()
    parts: list[dict[str, Any]] = []
    buf = bytearray()

    def flush(data: bytes) -> None:
        name = f"part{len(parts) + 1:03d}"
        (out / name).write_bytes(data)
        parts.append({"name": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})

    for chunk in _stream([wheel_dir / e["file"] for e in entries]):
        buf += chunk
        while len(buf) >= part_bytes:
            flush(bytes(buf[:part_bytes]))
            del buf[:part_bytes]
    if buf:
        flush(bytes(buf))
    manifest = {"format": FORMAT, "part_bytes": part_bytes, "total_bytes": offset}
    manifest |= {"parts": parts, "wheels": entries}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def read_manifest(d: Path) -> dict[str, Any]:
    p = d / "manifest.json"
    if not p.is_file():
        raise PackError(f"{p}: missing (carry .wheels/parts/manifest.json with every part)")
    m: dict[str, Any] = json.loads(p.read_text())
    if m.get("format") != FORMAT:
        raise PackError(f"{p}: not a {FORMAT} manifest")
    return m


def _part_ok(path: Path, part: dict[str, Any]) -> bool:
    return path.is_file() and path.stat().st_size == part["bytes"] and sha256_file(path) == part["sha256"]


def stash(src: Path, store: Path) -> tuple[list[str], list[str]]:
    """Copy the parts in ``src`` that match its manifest into ``store``; (present, missing) names.

    A store made from another manifest is emptied first; a part that arrived corrupt is an error."""
    m = read_manifest(src)
    store.mkdir(parents=True, exist_ok=True)
    if (store / "manifest.json").is_file() and read_manifest(store) != m:
        for old in store.glob("part[0-9][0-9][0-9]"):
            old.unlink()
    shutil.copyfile(src / "manifest.json", store / "manifest.json")
    for part in m["parts"]:
        p, dst = src / part["name"], store / part["name"]
        if not p.is_file() or _part_ok(dst, part):
            continue
        if not _part_ok(p, part):
            raise PackError(f"{p}: size or sha256 differs from the manifest (transfer broken?)")
        tmp = dst.with_suffix(".tmp")
        shutil.copyfile(p, tmp)
        os.replace(tmp, dst)
    present = [p["name"] for p in m["parts"] if (store / p["name"]).is_file()]
    return present, [p["name"] for p in m["parts"] if p["name"] not in present]


def unpack(store: Path, out: Path) -> list[Path]:
    """Rebuild every wheel of the store's manifest in ``out``, each checked; the wheel paths."""
    m = read_manifest(store)
    bad = [p["name"] for p in m["parts"] if not _part_ok(store / p["name"], p)]
    if bad:
        raise PackError(f"{store}: part(s) missing or corrupt: {' '.join(bad)}")
    out.mkdir(parents=True, exist_ok=True)
    stream = _stream([store / p["name"] for p in m["parts"]])
    pending = b""
    written = []
    for w in m["wheels"]:
        h, left, dst = hashlib.sha256(), int(w["bytes"]), out / w["file"]
        with dst.open("wb") as f:
            while left:
                if not pending:
                    pending = next(stream)
                take, pending = pending[:left], pending[left:]
                f.write(take)
                h.update(take)
                left -= len(take)
        if h.hexdigest() != w["sha256"]:
            raise PackError(f"{dst}: sha256 differs from the manifest")
        written.append(dst)
    return written


def tree_bytes(repo: Path = REPO) -> int:
    """Bytes of what a device call sends besides carried paths: tracked + untracked-not-ignored."""
    cmd = ["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    names = subprocess.run(cmd, capture_output=True, check=True).stdout.split(b"\0")
    return sum((repo / n.decode()).stat().st_size for n in names if n and (repo / n.decode()).is_file())


def plan(parts_dir: Path, tree: int) -> list[str]:
    """One line per device call: the paths to carry and the MiB that call sends in all."""
    m = read_manifest(parts_dir)
    rel = parts_dir.resolve().relative_to(REPO) if parts_dir.resolve().is_relative_to(REPO) else parts_dir
    man = (parts_dir / "manifest.json").stat().st_size
    lines = [
        f"working tree {tree / MIB:.1f} MiB; {len(m['parts'])} part(s), {m['total_bytes'] / MIB:.1f} MiB"
    ]
    for i, p in enumerate(m["parts"], 1):
        total = (tree + man + p["bytes"]) / MIB
        flag = "" if total <= CALL_LIMIT_MIB else f"  OVER {CALL_LIMIT_MIB} MiB"
        lines.append(f"call {i}: carry {rel}/{p['name']} {rel}/manifest.json  ({total:.1f} MiB){flag}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="pack.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("wheels", nargs="?", type=Path, default=REPO / ".wheels/whl")
    p.add_argument("parts", nargs="?", type=Path, default=REPO / ".wheels/parts")
    p.add_argument("--part-mib", type=float, default=54.0)
    p.add_argument("--lock", type=Path, default=LOCK)
    p = sub.add_parser("plan")
    p.add_argument("parts", nargs="?", type=Path, default=REPO / ".wheels/parts")
    p = sub.add_parser("stash")
    p.add_argument("parts", type=Path)
    p.add_argument("store", type=Path)
    p = sub.add_parser("unpack")
    p.add_argument("store", type=Path)
    p.add_argument("out", type=Path)
    a = ap.parse_args(argv)
    try:
        if a.cmd == "pack":
            m = pack(a.wheels, a.parts, int(a.part_mib * MIB), locked_wheels(a.lock))
            mib = m["total_bytes"] / MIB
            print(f"{len(m['wheels'])} wheels, {mib:.1f} MiB -> {len(m['parts'])} part(s) in {a.parts}")
            print("\n".join(plan(a.parts, tree_bytes())))
        elif a.cmd == "plan":
            print("\n".join(plan(a.parts, tree_bytes())))
        elif a.cmd == "stash":
            have, missing = stash(a.parts, a.store)
            print(f"stash {a.store}: {len(have)} part(s) present; missing: {' '.join(missing) or 'none'}")
        else:
            print(f"unpacked {len(unpack(a.store, a.out))} wheels into {a.out}, sha256 checked")
    except PackError as e:
        print(f"pack.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
