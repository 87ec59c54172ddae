"""Reading files in blocks: the sha256 every package uses, and a bounded read.

Both read 1 MiB at a time. A single `read(n)` with a large `n` allocates `n` bytes before
it reads anything, and on a 32-bit Python an `n` of 2 GiB or more does not even fit the
size type (OverflowError), so a limit is never passed to `read` as it is.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

BLOCK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def read_at_most(handle: BinaryIO, limit: int) -> bytes:
    """The file's bytes, but no more than `limit` + 1 of them: a result longer than `limit`
    says the file is larger (it may have grown since it was measured)."""
    blocks: list[bytes] = []
    total = 0
    while total <= limit:
        block = handle.read(min(BLOCK, limit + 1 - total))
        if not block:
            break
        blocks.append(block)
        total += len(block)
    return b"".join(blocks)
