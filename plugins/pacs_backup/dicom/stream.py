"""Reading a DICOM file forward in bounded memory: from bytes, from a stream (an object store's answer),
and a deflated dataset inflated as it is read, never more than a cap in all.

Both the received-instance screen and the preview read through :class:`Reader`: whatever a file
declares, what is held at once is a small window (a few chunks), and a deflated file never inflates
past ``max_inflated_bytes``. Positions are absolute offsets in the (inflated) stream; the window only
moves forward.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

CHUNK = 64 * 1024
MAX_VIEW = 1024 * 1024  # the most one look at the stream may ask for (a row of pixels, a short value)
IMPLICIT_LE, EXPLICIT_LE = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1"
EXPLICIT_BE, DEFLATED = "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"
_LONG_META_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}


class DicomLimit(Exception):
    """Reading stopped at one of the limits; ``str()`` is a sentence naming the limit and its setting."""


class InflateLimit(DicomLimit):
    """A deflated dataset inflates to more than the cap."""

    def __init__(self, cap: int) -> None:
        super().__init__(f"its deflated data inflates to more than {cap // (1024 * 1024)} MB (BACKUP_MAX_INFLATED_MB)")


class BadDeflate(Exception):
    """The deflated part of a file is damaged; ``str()`` says so."""

    def __init__(self) -> None:
        super().__init__("its deflated data is damaged")


class Reader:
    """A forward-only view of a file: :meth:`view` looks at bytes at an absolute position, :meth:`advance`
    forgets (and, for a stream, reads past) everything before a position.

    Built on bytes, nothing is copied but the small views asked for; built on ``read`` (a function
    returning up to n bytes, ``b""`` at the end), at most one view plus a chunk is held.
    """

    def __init__(self, data: bytes | None = None, read: Callable[[int], bytes] | None = None) -> None:
        self._mem = data is not None
        self._buf: bytes | bytearray = data if data is not None else bytearray()
        self._base = 0  # absolute position of self._buf[0]
        self._read = read
        self._eof = data is not None or read is None
        self.size: int | None = len(data) if data is not None else None  # known only for bytes

    def _fill(self, end: int) -> None:
        buf = self._buf
        assert isinstance(buf, bytearray)  # noqa: S101 - only a stream reader fills
        while not self._eof and self._base + len(buf) < end:
            chunk = self._read(CHUNK) if self._read is not None else b""
            if not chunk:
                self._eof = True
                break
            buf += chunk

    def view(self, pos: int, n: int) -> bytes:
        """Up to ``n`` bytes at ``pos`` (fewer at the end of the file)."""
        if pos < self._base or n > MAX_VIEW:
            raise ValueError(f"cannot look at {n} bytes at {pos} (window starts at {self._base})")
        if not self._mem:
            self._fill(pos + n)
        start = pos - self._base
        return bytes(self._buf[start : start + n])

    def advance(self, pos: int) -> None:
        """Forget what lies before ``pos``; a stream is read past it chunk by chunk (nothing is kept)."""
        if self._mem:
            return
        buf = self._buf
        assert isinstance(buf, bytearray)  # noqa: S101 - bytes are only used in memory mode
        drop = pos - self._base
        if drop <= 0:
            return
        if drop < len(buf):
            del buf[:drop]
            self._base = pos
            return
        self._base += len(buf)
        buf.clear()
        while self._base < pos and not self._eof:
            chunk = self._read(min(CHUNK, pos - self._base)) if self._read is not None else b""
            if not chunk:
                self._eof = True
                break
            self._base += len(chunk)

    def at_end(self, pos: int) -> bool:
        """Whether nothing at all lies at ``pos``."""
        return not self.view(pos, 1)


class _Inflater:
    """``read(n)`` over the raw deflate stream that starts at ``start`` in ``raw``, capped at ``cap`` bytes."""

    def __init__(self, raw: Reader, start: int, cap: int) -> None:
        self._raw, self._pos, self._cap = raw, start, cap
        self._z = zlib.decompressobj(-zlib.MAX_WBITS)
        self._tail = b""
        self._total = 0
        self._done = False

    def read(self, n: int) -> bytes:
        while not self._done:
            data = self._tail
            if not data:
                data = self._raw.view(self._pos, CHUNK)
                self._pos += len(data)
                self._raw.advance(self._pos)
            try:
                out = self._z.decompress(data, n)
            except zlib.error:
                raise BadDeflate from None
            self._tail = self._z.unconsumed_tail
            if self._z.eof or (not data and not out):
                self._done = True
            if out:
                self._total += len(out)
                if self._total > self._cap:
                    raise InflateLimit(self._cap)
                return out
        return b""


def _guess(head: bytes) -> str:
    """The encoding of a file that starts with its dataset (no preamble, no meta), guessed as DCMTK guesses
    it: explicit VR when two capital letters follow the first tag, big endian when its group reads small so."""
    if not (len(head) == 6 and head[4:6].isalpha() and head[4:6].isupper()):
        return IMPLICIT_LE
    return EXPLICIT_BE if head[0] == 0 and head[1] != 0 else EXPLICIT_LE


def open_dataset(src: Reader, max_inflated: int) -> tuple[Reader, int, str]:
    """Skip the preamble and the file meta group: ``(reader of the dataset, its start, transfer syntax UID)``.

    For a deflated file the reader inflates as it is read (start 0), never more than ``max_inflated``.
    """
    pos = 132 if src.view(128, 4) == b"DICM" else 0
    syntax = _guess(src.view(0, 6)) if pos == 0 else ""
    for _ in range(1000):  # a meta group holds a handful of elements
        head = src.view(pos, 12)
        if len(head) < 8 or struct.unpack_from("<H", head)[0] != 0x0002:
            break
        elem, vr = struct.unpack_from("<H", head, 2)[0], head[4:6]
        if vr in _LONG_META_VRS:
            if len(head) < 12:
                break
            length, size = struct.unpack_from("<I", head, 8)[0], 12
        else:
            length, size = struct.unpack_from("<H", head, 6)[0], 8
        if elem == 0x0010:
            syntax = src.view(pos + size, min(length, 64)).rstrip(b"\0 ").decode("ascii", "replace")
        pos += size + length
        src.advance(pos)
    syntax = syntax or EXPLICIT_LE
    if syntax == DEFLATED:
        return Reader(read=_Inflater(src, pos, max_inflated).read), 0, syntax
    return src, pos, syntax
