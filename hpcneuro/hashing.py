"""File digests, in a module of their own: ``hpcneuro oinfo``'s provenance needs one, and
importing hpcneuro.config (yaml, the config machinery) for it cost ~0.05 s of the
command's start-up (issue 14). hpcneuro.config re-exports file_sha256."""
from __future__ import annotations

import hashlib
import os

#: bytes read at a time when hashing a file (tables may be larger than memory)
HASH_CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 (hex) of a file's contents."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
