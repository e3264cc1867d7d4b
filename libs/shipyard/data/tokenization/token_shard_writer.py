"""Writing a 2-D ``.npy`` file whose number of rows is only known at the end, in bounded memory.

The ``.npy`` header holds the array's shape, so it must be written before the data, yet a streaming
tokenizer learns the row count last, and ``Storage.open_write`` cannot seek back (an S3 multipart upload
is append-only). Rows are therefore spooled to an anonymous local temporary file as they come; ``commit``
writes the header, then copies the spool into the storage object in 1 MiB chunks, hashing as it goes.
Memory use is the caller's batch plus one chunk; local disk holds one shard's tokens.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from types import TracebackType

import numpy as np

from shipyard.storage.base import Storage

__all__ = ["NpyRowSpool", "write_npy"]

_COPY_CHUNK = 1 << 20


class NpyRowSpool:
    """Accumulates rows of ``row_len`` values of ``dtype``; ``commit`` publishes them as one ``.npy``."""

    def __init__(self, row_len: int, dtype: np.dtype | str) -> None:
        # Little-endian on disk whatever the machine, so the header's descr is stable ("<u2").
        self.dtype = np.dtype(dtype).newbyteorder("<")
        self.row_len = row_len
        self.rows = 0
        self._spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()/__exit__

    def append(self, rows: np.ndarray) -> None:
        if rows.ndim != 2 or rows.shape[1] != self.row_len:
            raise ValueError(f"expected rows of {self.row_len} values, got shape {rows.shape}")
        self._spool.write(np.ascontiguousarray(rows, dtype=self.dtype).tobytes())
        self.rows += rows.shape[0]

    def commit(self, storage: Storage, uri: str) -> str:
        """Write the ``.npy`` atomically at ``uri``; returns the SHA-256 of the file's bytes."""
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header,
            {
                "descr": np.lib.format.dtype_to_descr(self.dtype),
                "fortran_order": False,
                "shape": (self.rows, self.row_len),
            },
        )
        digest = hashlib.sha256(header.getvalue())
        self._spool.seek(0)
        with storage.open_write(uri) as out:
            out.write(header.getvalue())
            while chunk := self._spool.read(_COPY_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        return digest.hexdigest()

    def close(self) -> None:
        self._spool.close()

    def __enter__(self) -> NpyRowSpool:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def write_npy(storage: Storage, uri: str, array: np.ndarray) -> None:
    """Write a small array as ``.npy`` atomically (built in memory)."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    storage.write_bytes(uri, buffer.getvalue())
