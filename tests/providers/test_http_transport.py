"""The pooled HTTP/1.1 client, against real servers on 127.0.0.1 that write exact wire bytes."""

from __future__ import annotations

import asyncio
import gzip
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from modelroute.failures import FailureClass, classify
from modelroute.providers.http import Transport, read_error, sse_events
from modelroute.types import UpstreamError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class WireServer:
    """A TCP server whose handler answers each request with whatever bytes a test wants."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> WireServer:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
                pass  # the client left, or the test ended with the connection still open
            finally:
                writer.close()

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1/chat/completions"

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        body = await reader.readexactly(length)
        self.requests.append(head + body)
        return body


def reply(body: bytes, status: str = "200 OK", extra: bytes = b"") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n".encode()
        + extra
        + b"\r\n"
        + body
    )


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    t = Transport()
    yield t
    await t.aclose()


async def post(transport: Transport, url: str, body: bytes = b"{}") -> tuple[int, bytes]:
    async with transport.post(url, {"content-type": "application/json"}, body) as response:
        return response.status, await response.read()


async def test_keep_alive_reuses_one_connection(transport: Transport) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            body = await server.read_request(reader)
            writer.write(reply(b'{"echo":' + body + b"}"))

    async with WireServer(handler) as server:
        for i in range(5):
            status, body = await post(transport, server.url, b'{"n":%d}' % i)
            assert (status, body) == (200, b'{"echo":{"n":%d}}' % i)
    assert server.connections == 1
    head = server.requests[0].split(b"\r\n\r\n")[0].decode()
    assert head.startswith("POST /v1/chat/completions HTTP/1.1\r\n")
    assert "\r\nhost: 127.0.0.1:" in head and "\r\ncontent-length: 7" in head


async def test_concurrent_requests_open_parallel_connections_then_reuse_them(
    transport: Transport,
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server.read_request(reader)
            await asyncio.sleep(0.05)
            writer.write(reply(b"{}"))

    async with WireServer(handler) as server:
        await asyncio.gather(*(post(transport, server.url) for _ in range(4)))
        await asyncio.gather(*(post(transport, server.url) for _ in range(4)))
    assert server.connections == 4


async def test_the_connection_limit_queues_requests() -> None:
    transport = Transport(limit_per_host=2)
    in_flight = peak = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal in_flight, peak
        while True:
            await server.read_request(reader)
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.02)
            in_flight -= 1
            writer.write(reply(b"{}"))

    try:
        async with WireServer(handler) as server:
            results = await asyncio.gather(*(post(transport, server.url) for _ in range(6)))
    finally:
        await transport.aclose()
    assert [status for status, _ in results] == [200] * 6
    assert peak == 2 and server.connections == 2


async def test_chunked_body_is_reassembled(transport: Transport) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for piece in (b'{"a":', b"1}"):
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(b"0\r\n\r\n")
        await server.read_request(reader)  # still open for the next request
        writer.write(reply(b"{}"))

    async with WireServer(handler) as server:
        assert await post(transport, server.url) == (200, b'{"a":1}')
        assert await post(transport, server.url) == (200, b"{}")
    assert server.connections == 1


async def test_gzip_body_is_decoded(transport: Transport) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(reply(gzip.compress(b'{"zipped":true}'), extra=b"content-encoding: gzip\r\n"))

    async with WireServer(handler) as server:
        assert await post(transport, server.url) == (200, b'{"zipped":true}')


async def test_body_delimited_by_close(transport: Transport) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{"end":')
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(b'"close"}')
        await writer.drain()

    async with WireServer(handler) as server:
        assert await post(transport, server.url) == (200, b'{"end":"close"}')
        assert await post(transport, server.url) == (200, b'{"end":"close"}')
    assert server.connections == 2  # such a connection cannot carry a second request


async def test_a_connection_closed_while_idle_is_replaced(transport: Transport) -> None:
    """The server's keep-alive ran out while the connection sat in the pool: the next request
    goes out on a new connection, and nothing is written to the closed one."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(reply(b"{}"))
        await writer.drain()
        # and close: one request per connection, like a server whose keep-alive is over

    async with WireServer(handler) as server:
        assert await post(transport, server.url) == (200, b"{}")
        await asyncio.sleep(0.05)  # the close reaches the client while the connection idles
        assert await post(transport, server.url) == (200, b"{}")
    assert server.connections == 2
    assert len(server.requests) == 2


async def test_a_request_written_to_a_reused_connection_is_never_sent_again(
    transport: Transport,
) -> None:
    """The server reads the second request on a kept-alive connection and closes without an
    answer: the request may have been processed, so it fails (an attempt for the engine to
    record and retry by its policy) instead of going out again behind the caller's back."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(reply(b"{}"))
        await writer.drain()
        if server.connections == 1:
            await server.read_request(reader)  # read the next request, then drop it unanswered

    async with WireServer(handler) as server:
        assert await post(transport, server.url) == (200, b"{}")
        with pytest.raises(UpstreamError) as caught:
            await post(transport, server.url)
        assert classify(caught.value).cls is FailureClass.SERVER_ERROR
        assert len(server.requests) == 2  # received once, not twice
        assert await post(transport, server.url) == (200, b"{}")  # a new connection
    assert server.connections == 2
    assert len(server.requests) == 3


async def test_disconnect_before_answering_is_a_server_error(transport: Transport) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)  # and close without a word

    async with WireServer(handler) as server:
        with pytest.raises(UpstreamError) as caught:
            await post(transport, server.url)
    assert caught.value.cause == "disconnected"
    assert classify(caught.value).cls is FailureClass.SERVER_ERROR


async def test_body_cut_short_is_a_server_error(transport: Transport) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"partial')
        await writer.drain()

    async with WireServer(handler) as server:
        with pytest.raises(UpstreamError) as caught:
            await post(transport, server.url)
    assert caught.value.cause == "disconnected" and "mid-response" in caught.value.detail


async def test_garbage_instead_of_http_is_an_invalid_response(transport: Transport) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(1)

    async with WireServer(handler) as server:
        with pytest.raises(UpstreamError) as caught:
            await post(transport, server.url)
    assert caught.value.cause == "bad_http"
    assert classify(caught.value).cls is FailureClass.INVALID_RESPONSE


async def test_refused_connection_is_a_connect_error(transport: Transport) -> None:
    async with WireServer(lambda r, w: asyncio.sleep(0)) as server:
        url = server.url
    with pytest.raises(UpstreamError) as caught:
        await post(transport, url)
    assert caught.value.cause == "refused"
    assert classify(caught.value).cls is FailureClass.CONNECT_ERROR


async def test_cancelled_request_closes_its_connection(transport: Transport) -> None:
    closed = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        await reader.read(1)  # returns b"" when the client closes
        closed.set()

    async with WireServer(handler) as server:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await post(transport, server.url)
        await asyncio.wait_for(closed.wait(), 2)


async def test_error_response_keeps_status_headers_and_body(transport: Transport) -> None:
    body = b'{"error":{"message":"slow down","type":"rate_limit_error"}}'

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(reply(body, "429 Too Many Requests", b"Retry-After: 3\r\n"))

    async with WireServer(handler) as server, transport.post(server.url, {}, b"{}") as response:
        error = await read_error(response)
    assert error.status == 429 and error.body == body and error.headers["retry-after"] == "3"
    failure = classify(error)
    assert failure.cls is FailureClass.RATE_LIMITED and failure.retry_after_s == 3


async def test_sse_events_arrive_as_the_network_delivers_them(transport: Transport) -> None:
    gate = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n")
        writer.write(b"transfer-encoding: chunked\r\n\r\n")
        for event in (b"data: one\r\n\r\ndata: two\r\n\r\n", b"event: x\ndata: three\n\n"):
            writer.write(b"%x\r\n%s\r\n" % (len(event), event))
            await writer.drain()
            await gate.wait()
        writer.write(b"0\r\n\r\n")

    async with WireServer(handler) as server, transport.post(server.url, {}, b"{}") as response:
        seen = []
        async for events in sse_events(response):
            seen.append(events)
            gate.set()  # the second read is only sent once the first pair is read
    assert seen == [[("", b"one"), ("", b"two")], [("x", b"three")]]


class _Reads:
    """The body of a response as the network's reads deliver it (the parser is what is under
    test here; the transport's own reads are tested over sockets above)."""

    def __init__(self, *reads: bytes) -> None:
        self.reads = reads

    async def chunks(self) -> AsyncIterator[bytes]:
        for read in self.reads:
            yield read


async def test_sse_events_split_across_reads_are_put_back_together() -> None:
    reads = _Reads(
        b'data: {"a"',  # an event cut in the middle
        b":1}\r",  # ... and its CRLF blank line cut between the CR and the LF
        b"\n\r\n",
        b": a comment, no event\n\nevent: e\ndata: line1\ndata: line2\n\ndata:tight\n\n",
        b"data: last, no blank line after it",
    )
    seen = [events async for events in sse_events(reads)]  # type: ignore[arg-type]
    assert seen == [
        [("", b'{"a":1}')],
        [("e", b"line1\nline2"), ("", b"tight")],
        [("", b"last, no blank line after it")],
    ]


def _certificate(tmp: Path) -> tuple[Path, Path]:
    key, cert = tmp / "key.pem", tmp / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


async def test_https_verifies_the_certificate(tmp_path: Path) -> None:
    key, cert = _certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(2)
        writer.write(reply(b'{"tls":true}'))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    url = f"https://localhost:{port}/v1/chat/completions"
    try:
        untrusting = Transport()
        with pytest.raises(UpstreamError) as caught:
            await post(untrusting, url)
        assert caught.value.cause == "certificate_error"
        await untrusting.aclose()

        trusting = Transport()
        trusting.ssl_context().load_verify_locations(cert)
        assert await post(trusting, url) == (200, b'{"tls":true}')
        await trusting.aclose()
    finally:
        server.close()


async def test_header_injection_is_refused(transport: Transport) -> None:
    with pytest.raises(UpstreamError) as caught:
        async with transport.post("http://127.0.0.1:9/x", {"x-key": "a\r\nevil: 1"}, b""):
            pass
    assert classify(caught.value).cls is FailureClass.BAD_REQUEST


async def test_connections_idle_past_the_limit_are_closed() -> None:
    transport = Transport(idle_timeout_s=0.1)
    closed = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal closed
        try:
            while True:
                await server.read_request(reader)
                await asyncio.sleep(0.02)
                writer.write(reply(b"{}"))
        except asyncio.IncompleteReadError:
            closed += 1  # the client closed this connection
            raise

    try:
        async with WireServer(handler) as server:
            await asyncio.gather(*(post(transport, server.url) for _ in range(2)))
            for _ in range(6):  # steady traffic reuses the newest; the other idles on
                await post(transport, server.url)
                await asyncio.sleep(0.03)
            assert server.connections == 2 and closed == 1  # closed while still pooled
            await asyncio.sleep(0.12)
            await post(transport, server.url)  # the last one is past the limit too: a new one
            await asyncio.sleep(0.02)
            assert server.connections == 3 and closed == 2
    finally:
        await transport.aclose()
