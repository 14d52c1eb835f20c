"""``multipart/related`` bodies of DICOMweb answers (RFC 2387), written part by part.

The boundary is random (128 bits) for every answer, so no file can hold it by design; a study's instances
are streamed one after the other, never joined in memory.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator


def new_boundary() -> str:
    return "pacs-" + secrets.token_hex(16)


def content_type(part_type: str, boundary: str, transfer_syntax: str | None = None) -> str:
    """The answer's Content-Type: ``multipart/related; type="..."; boundary=...`` (and transfer-syntax)."""
    extra = f"; transfer-syntax={transfer_syntax}" if transfer_syntax else ""
    return f'multipart/related; type="{part_type}"{extra}; boundary={boundary}'


def stream(parts: Iterable[tuple[str, bytes]], boundary: str) -> Iterator[bytes]:
    """The body: each ``(content type, bytes)`` part behind its boundary line, then the closing boundary."""
    for kind, payload in parts:
        yield f"--{boundary}\r\nContent-Type: {kind}\r\nContent-Length: {len(payload)}\r\n\r\n".encode("ascii")
        yield payload
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode("ascii")


def encode(parts: Iterable[tuple[str, bytes]], part_type: str) -> tuple[bytes, str]:
    """The whole body at once and its Content-Type (for small answers: frames, bulk data)."""
    boundary = new_boundary()
    return b"".join(stream(parts, boundary)), content_type(part_type, boundary)


def decode(body: bytes, content_type_value: str) -> list[tuple[str, bytes]]:
    """The parts of a body written by :func:`stream` (for tests and tools): ``(content type, bytes)``."""
    boundary = ""
    for param in content_type_value.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary":
            boundary = value.strip('"')
    if not boundary:
        raise ValueError("The Content-Type names no boundary.")
    out: list[tuple[str, bytes]] = []
    for chunk in body.split(f"--{boundary}".encode("ascii"))[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, payload = chunk[2:].partition(b"\r\n\r\n")
        kind = ""
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-type":
                kind = value.strip()
        out.append((kind, payload[:-2] if payload.endswith(b"\r\n") else payload))
    return out
