"""Requests read within a size and a time limit, for every HTTP service here.

* ``read_body``: the limit is checked against ``Content-Length`` first and then while reading, so a
  chunked body (no length given) is cut off as soon as it passes the limit instead of being buffered
  whole; a body that has not arrived within ``timeout`` seconds raises ``BodyTimeout``. Routes answer
  ``BodyError.status`` (413 or 408) with ``BodyError.headers`` (the connection is closed: the rest of
  the body is never read).
* ``serve``: uvicorn with ``BoundedH11``, which answers 408 and closes a connection whose request head
  has not arrived within the read timeout (a client that opens a connection, or sends part of the
  headers, and stops). Together the two bound how long one request can hold a connection; the
  event loop never waits on it, so other requests are served meanwhile.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from uvicorn.protocols.http.h11_impl import H11Protocol


class BodyError(ValueError):
    status = 400
    headers = {"connection": "close"}


class BodyTooLarge(BodyError):
    """The body is over the limit; the message says by how much (answer 413)."""

    status = 413


class BodyTimeout(BodyError):
    """The body did not arrive in time (answer 408)."""

    status = 408


async def read_body(request: Request, limit: int, timeout: float | None = None) -> bytes:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise BodyTooLarge(f"body of {length} bytes exceeds the limit of {limit}")
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    chunks, size = [], 0
    stream = request.stream().__aiter__()
    while True:
        try:
            if deadline is None:
                chunk = await stream.__anext__()
            else:
                chunk = await asyncio.wait_for(stream.__anext__(), max(0.0, deadline - loop.time()))
        except StopAsyncIteration:
            break
        except asyncio.TimeoutError:
            raise BodyTimeout(f"request body not received within {timeout:g} s "
                              f"({size} bytes of {length or 'unknown'} arrived)") from None
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


_HEAD_TIMEOUT_BODY = b'{"error": "request head not received in time"}'
_HEAD_TIMEOUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
                 b"content-length: %d\r\n\r\n%s" % (len(_HEAD_TIMEOUT_BODY), _HEAD_TIMEOUT_BODY))


class BoundedH11(H11Protocol):
    """uvicorn's h11 protocol with a deadline for the request head: from the connection's start, and
    again after each response, a head must arrive within ``read_timeout`` seconds, else 408 and close.
    (uvicorn's own keep-alive timeout stops counting at the first byte of the next request.)"""

    read_timeout = 15.0
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.read_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and not self.cycle.response_complete:
            self._disarm()  # a head arrived; the route bounds the body (read_body)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or (self.cycle is not None and not self.cycle.response_complete):
            return
        self.transport.write(_HEAD_TIMEOUT)
        self.transport.close()


def serve(app: Any, host: str, port: int, log_level: str, read_timeout: float) -> None:
    """Run ``app`` under uvicorn with the request-head deadline (``BoundedH11``)."""
    import uvicorn

    protocol = type("BoundedH11", (BoundedH11,), {"read_timeout": read_timeout})
    uvicorn.run(app, host=host, port=port, log_level=log_level, http=protocol)
