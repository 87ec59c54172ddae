"""Bounded reads: never one huge `read(n)` (it allocates n bytes first, and overflows a
32-bit Python's size type from 2 GiB), and one byte past the limit to say "larger"."""

from __future__ import annotations

import io

from hemiface.core.checksum import BLOCK, read_at_most


class Recording(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.sizes: list[int] = []

    def read(self, size: int | None = -1) -> bytes:
        self.sizes.append(-1 if size is None else size)
        return super().read(size)


def test_a_small_file_under_a_huge_limit_is_read_whole_in_small_reads() -> None:
    data = bytes(range(256)) * 9000  # 2.2 MiB
    handle = Recording(data)
    assert read_at_most(handle, 2 << 30) == data
    assert all(0 < size <= BLOCK for size in handle.sizes)


def test_a_file_over_the_limit_gives_one_byte_more_than_the_limit() -> None:
    data = b"x" * (3 * BLOCK + 5)
    assert len(read_at_most(io.BytesIO(data), BLOCK)) == BLOCK + 1
    assert len(read_at_most(io.BytesIO(data), 10)) == 11
    assert read_at_most(io.BytesIO(b"abc"), 3) == b"abc"
    assert read_at_most(io.BytesIO(b""), 5) == b""


def test_the_model_reader_takes_a_model_in_blocks(tmp_path) -> None:
    from hemiface.runtime import manifest

    model = tmp_path / "m.tflite"
    model.write_bytes(b"TFL3" + bytes(3 * BLOCK))
    assert manifest._read_model_bytes(model) == model.read_bytes()
