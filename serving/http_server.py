"""An HTTP/1.1 server that no client can starve: connections are read by one event loop, never by a
thread per connection; only complete requests reach the handler threads.

- Every connection has a read deadline: a request (headers and body) must arrive whole within
  `read_timeout_s` of its first byte, and an idle keep-alive connection is closed after as long. A
  half-sent request is answered 408; slow or idle connections cost a socket and a timer, nothing more.
- The listen backlog is `backlog` (the kernel caps it at net.core.somaxconn).
- Bodies are bounded: a Content-Length over `max_body_bytes` is answered 413 before the body is read
  (with `Expect: 100-continue` the client never sends it; otherwise what arrives is discarded, bounded
  by the deadline, so the client reads the answer instead of a reset). Chunked bodies are refused (411).
- Cheap requests (status, metadata, metrics: `is_cheap`) run on their own small pool, so health checks
  answer at once however many predictions are queued on the work pool.
"""
from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from concurrent import futures
from http import HTTPStatus
from typing import Callable, Dict, NamedTuple, Tuple

log = logging.getLogger("serving.http")

MAX_HEADER_BYTES = 64 * 1024
CHEAP_THREADS = 2


class Request(NamedTuple):
    method: str
    path: str
    headers: Dict[str, str]  # names lower-cased
    body: bytes  # or a bytearray


class Response(NamedTuple):
    status: int
    body: bytes
    content_type: str = "application/json"


Handler = Callable[[Request], Response]


def error_response(status: int, message: str) -> Response:
    return Response(status, json.dumps({"error": message}).encode())


class _Connection(asyncio.Protocol):
    """One client connection: parses requests as bytes arrive, one request at a time."""

    def __init__(self, server: HttpServer):
        self.server = server
        self.loop = server.loop
        self.buffer = bytearray()
        self.transport = None
        self.timer = None
        self.busy = False  # a request is with the handler
        self.discard_left = 0  # bytes of a refused body still to swallow before closing
        self.head = None  # (method, path, headers, body length) once the headers are in

    # -- asyncio callbacks ---------------------------------------------------------------------------
    def connection_made(self, transport):
        self.transport = transport
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = f"{host}:{port}"
        self.server.connections.add(self)
        log.debug("rest connection %s opened", self.peer)
        self._arm()

    def connection_lost(self, exc):
        self.server.connections.discard(self)
        self._disarm()
        log.debug("rest connection %s closed", self.peer)

    def data_received(self, data: bytes):
        if self.discard_left:
            self.discard_left -= min(len(data), self.discard_left)
            if not self.discard_left:
                self.transport.close()
            return
        if not self.buffer and self.head is None and not self.busy:
            self._arm()  # the deadline of a new request runs from its first byte
        self.buffer += data
        self._parse()

    # -- deadlines -----------------------------------------------------------------------------------
    def _arm(self):
        self._disarm()
        self.timer = self.loop.call_later(self.server.read_timeout_s, self._timed_out)

    def _disarm(self):
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _timed_out(self):
        self.timer = None
        if self.busy:
            return
        if self.discard_left:
            self.transport.close()
        elif self.buffer or self.head:
            log.info("rest connection %s: request not received whole within %.0f s; answered 408",
                     self.peer, self.server.read_timeout_s)
            self._reply(error_response(408, f"the request did not arrive whole within "
                                            f"{self.server.read_timeout_s:g} s"), close=True)
        else:
            self.transport.close()  # idle keep-alive connection

    # -- parsing -------------------------------------------------------------------------------------
    def _parse(self):
        if self.busy:
            return
        if self.server.stopping:
            self._reply(error_response(503, "the server is shutting down"), close=True)
            return
        if self.head is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0 or end > MAX_HEADER_BYTES:
                if end > MAX_HEADER_BYTES or len(self.buffer) > MAX_HEADER_BYTES:
                    self._reply(error_response(431, f"request headers over {MAX_HEADER_BYTES} bytes"), close=True)
                return
            head = self._parse_head(bytes(self.buffer[:end]))
            del self.buffer[:end + 4]
            if head is None:
                return
            self.head = head
        method, path, headers, length = self.head
        if len(self.buffer) < length:
            return
        if len(self.buffer) == length:  # the usual case: hand the buffer over, no copy
            body, self.buffer = self.buffer, bytearray()
        else:
            body = bytes(memoryview(self.buffer)[:length])
            del self.buffer[:length]
        self.head = None
        self._dispatch(Request(method, path, headers, body))

    def _parse_head(self, head: bytes):
        try:
            lines = head.decode("latin-1").split("\r\n")
            method, path, version = lines[0].split(" ")
            headers = {}
            for line in lines[1:]:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        except ValueError:
            self._reply(error_response(400, "malformed HTTP request line or header"), close=True)
            return None
        self.http10 = version == "HTTP/1.0"
        self.keep_alive = headers.get("connection", "").lower() != "close" and not (
            self.http10 and headers.get("connection", "").lower() != "keep-alive")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._reply(error_response(411, "chunked request bodies are not accepted: send Content-Length"),
                        close=True)
            return None
        text = headers.get("content-length", "0")
        if not text.isdigit():
            self._reply(error_response(400, f"invalid Content-Length {text!r}"), close=True)
            return None
        length = int(text)
        if length > self.server.max_body_bytes:
            message = (f"request body of {length} bytes is over this server's limit of "
                       f"{self.server.max_body_bytes} bytes")
            expect = headers.get("expect", "").lower() == "100-continue"
            # Without 100-continue the client sends the body anyway: swallow it (bounded by the deadline),
            # then close, so that it reads this answer rather than a reset.
            self.discard_left = 0 if expect else max(0, length - len(self.buffer))
            self.buffer.clear()
            self._reply(error_response(413, message), close=True)
            return None
        if headers.get("expect", "").lower() == "100-continue" and length > len(self.buffer):
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return method, path, headers, length

    # -- handling ------------------------------------------------------------------------------------
    def _dispatch(self, request: Request):
        self.busy = True
        self._disarm()
        self.transport.pause_reading()  # one request at a time per connection: back-pressure on pipelining
        pool = self.server.cheap_pool if self.server.is_cheap(request.method, request.path) else self.server.work_pool
        future = self.loop.run_in_executor(pool, self.server.call_handler, request)
        self.server.in_flight.add(future)
        future.add_done_callback(self._done)

    def _done(self, future):
        self.server.in_flight.discard(future)
        self.busy = False
        if self.transport.is_closing():
            return
        try:
            response = future.result()
        except Exception as e:  # the handler answers errors itself; this is a bug, still answered
            log.exception("REST handler failed")
            response = error_response(500, f"{type(e).__name__}: {e}")
        self._reply(response, close=not self.keep_alive or self.server.stopping)
        if not self.transport.is_closing():
            self.transport.resume_reading()
            self._arm()
            if self.buffer:
                self._parse()

    def _reply(self, response: Response, close: bool):
        reason = HTTPStatus(response.status).phrase if response.status in HTTPStatus._value2member_map_ else ""
        head = (f"HTTP/1.1 {response.status} {reason}\r\nContent-Type: {response.content_type}\r\n"
                f"Content-Length: {len(response.body)}\r\n"
                f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n").encode("latin-1")
        self.transport.write(head + response.body)
        if close and not self.discard_left:
            self.transport.close()


class HttpServer:
    """The event loop runs in its own thread; `start()` binds and listens, `stop()` stops accepting,
    lets in-flight requests finish and closes the connections."""

    def __init__(self, host: str, port: int, handler: Handler, is_cheap: Callable[[str, str], bool], *,
                 threads: int, backlog: int, read_timeout_s: float, max_body_bytes: int):
        self.handler, self.is_cheap = handler, is_cheap
        self.backlog, self.read_timeout_s, self.max_body_bytes = backlog, read_timeout_s, max_body_bytes
        self.work_pool = futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rest")
        self.cheap_pool = futures.ThreadPoolExecutor(max_workers=CHEAP_THREADS, thread_name_prefix="rest-cheap")
        self.loop = asyncio.new_event_loop()
        self.connections: set = set()
        self.in_flight: set = set()
        self.stopping = False
        self.sock = socket.create_server((host, port), backlog=backlog, reuse_port=False)
        self.server_address: Tuple[str, int] = self.sock.getsockname()[:2]
        self._server = None
        self._thread: threading.Thread | None = None

    def call_handler(self, request: Request) -> Response:
        return self.handler(request)

    def start(self) -> None:
        ready = threading.Event()

        def run():
            asyncio.set_event_loop(self.loop)
            self._server = self.loop.run_until_complete(
                self.loop.create_server(lambda: _Connection(self), sock=self.sock, backlog=self.backlog))
            ready.set()
            self.loop.run_forever()

        self._thread = threading.Thread(target=run, name="rest-loop", daemon=True)
        self._thread.start()
        ready.wait()

    def stop(self) -> None:
        async def drain():
            self.stopping = True
            self._server.close()  # stop accepting
            while self.in_flight:
                await asyncio.gather(*list(self.in_flight), return_exceptions=True)
            for c in list(self.connections):
                c.transport.close()
            await asyncio.sleep(0)  # let the closes run their callbacks

        if self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(drain(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.work_pool.shutdown(wait=True)
        self.cheap_pool.shutdown(wait=True)
        self.loop.close()
