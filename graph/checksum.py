"""Checksums of cache entries: every file's XXH3-128 recorded at write, checked at read.

An entry's manifest lists each file it wrote (zarr metadata, chunks, ``key.json``, ``provenance.json``)
with its size and digest, and carries a digest of itself (``seal``/``unseal``), so a flipped, truncated,
emptied or deleted file of any kind is noticed. Chunks are checked as zarr reads them
(:class:`CheckedStore`): the bytes are hashed on their way to the decoder, which costs no extra read
(XXH3 hashes at several GB/s, far faster than blosc decompresses). A chunk the manifest lists but the
disk lacks raises :class:`EntryDamaged`; zarr alone would read it as fill value, silently.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import xxhash
from zarr.abc.store import ByteRequest
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import LocalStore

ALGORITHM = "xxh3-128"
_BLOCK = 8 << 20


class EntryDamaged(Exception):
    """A committed cache entry's files do not match its manifest: treat the entry as absent."""

    def __init__(self, key: str, what: str, seal: str | None = None) -> None:
        super().__init__(key, what, seal)
        self.key, self.what, self.seal = key, what, seal  # seal: the manifest checksum, when it was sound

    def __str__(self) -> str:
        return f"cache entry {self.key[:12]} is damaged: {self.what}"


def digest_bytes(data: bytes | memoryview) -> str:
    return xxhash.xxh3_128_hexdigest(data)


def digest_file(path: Path) -> str:
    return _size_and_digest(path)[1]


def _size_and_digest(path: Path | str) -> tuple[int, str]:
    h = xxhash.xxh3_128()
    with open(path, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        buf = bytearray(min(_BLOCK, max(size, 1)))
        view = memoryview(buf)
        while n := f.readinto(buf):
            h.update(view[:n])
    return size, h.hexdigest()


def files_under(folder: Path | str) -> list[str]:
    """The paths of every file under ``folder`` (one walk of its tree)."""
    return [os.path.join(dirpath, name) for dirpath, _dirs, files in os.walk(folder) for name in files]


def digest_files(folder: Path, paths: list[str], skip: frozenset[str]) -> dict[str, list]:
    """``relative/posix/path → [size, digest]`` of the files ``paths`` (under ``folder``, as
    :func:`files_under` lists them) except top-level ``skip``."""
    out: dict[str, list] = {}
    for full in paths:
        rel = Path(os.path.relpath(full, folder)).as_posix()
        if rel not in skip:
            out[rel] = list(_size_and_digest(full))
    return out


def _canonical(data: dict) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def seal(manifest: dict) -> dict:
    """``manifest`` with a ``checksum`` of its own canonical JSON added."""
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    return {**body, "checksum": f"{ALGORITHM}:{digest_bytes(_canonical(body))}"}


def unseal(text: str | bytes) -> dict:
    """The manifest parsed from ``text`` (``checksum`` included); ValueError when it does not parse or
    its checksum differs."""
    data = json.loads(text)  # JSONDecodeError is a ValueError
    if not isinstance(data, dict) or not isinstance(data.get("checksum"), str):
        raise ValueError("manifest without checksum")
    body = {k: v for k, v in data.items() if k != "checksum"}
    if data["checksum"] != f"{ALGORITHM}:{digest_bytes(_canonical(body))}":
        raise ValueError("checksum mismatch")
    return data


def check_file(path: Path, expected: list, full: bool) -> str | None:
    """What is wrong with ``path`` against ``[size, digest]`` (None: fine); ``full`` also hashes it."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "missing"
    except OSError as e:
        return f"unreadable ({e.strerror or e})"
    if size != expected[0]:
        return f"{size} bytes instead of {expected[0]}"
    if full:
        try:
            if digest_file(path) != expected[1]:
                return "checksum mismatch"
        except OSError as e:
            return f"unreadable ({e.strerror or e})"
    return None


class CheckedStore(LocalStore):
    """A read-only zarr store over one entry folder that checks every file it reads against the
    entry's digests. A key the entry never wrote (a chunk zarr skipped because it held only fill
    values) reads as absent without looking at the disk."""

    def __init__(self, root: Path | str, key: str, digests: dict[str, list], seal: str) -> None:
        super().__init__(root, read_only=True)
        self.entry_key, self.digests, self.seal = key, digests, seal

    def with_read_only(self, read_only: bool = False) -> "CheckedStore":
        return type(self)(self.root, self.entry_key, self.digests, self.seal)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CheckedStore) and self.root == other.root and self.digests is other.digests

    __hash__ = None  # type: ignore[assignment]

    async def get(self, key: str, prototype: BufferPrototype | None = None,
                  byte_range: ByteRequest | None = None) -> Buffer | None:
        expected = self.digests.get(key)
        if expected is None:
            return None
        whole = await super().get(key, prototype, None)
        if whole is None:
            raise EntryDamaged(self.entry_key, f"{key}: missing", self.seal)
        data = whole.to_bytes()
        if len(data) != expected[0] or digest_bytes(data) != expected[1]:
            raise EntryDamaged(self.entry_key, f"{key}: checksum mismatch", self.seal)
        if byte_range is None:
            return whole
        return await super().get(key, prototype, byte_range)  # zarr asks ranges only of sharded arrays
