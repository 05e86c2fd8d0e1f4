"""Request bodies read with a size limit, for every HTTP service here.

The limit is checked against ``Content-Length`` first and then while reading, so a chunked body
(no length given) is cut off as soon as it passes the limit instead of being buffered whole.
"""

from __future__ import annotations

from starlette.requests import Request


class BodyTooLarge(ValueError):
    """The body is over the limit; the message says by how much (answer 413)."""


async def read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise BodyTooLarge(f"body of {length} bytes exceeds the limit of {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
