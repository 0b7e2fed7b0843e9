#!/usr/bin/python3
"""A slow uplink between two loopback TCP endpoints, in user space (this kernel has no netem qdisc).

Usage: slow-link.py LISTEN_PORT UPSTREAM_PORT [--delay-ms MS] [--rate BYTES_PER_S] [--ready FILE]

Listens on 127.0.0.1:LISTEN_PORT (0: a free port) and forwards every connection to 127.0.0.1:UPSTREAM_PORT.
Each direction is a link of its own: bytes enter it at most --rate bytes per second (0: no limit; the
serialisation delay of a real narrow link) and come out --delay-ms after they were serialised (the
propagation delay). The proxy reads no more than a small window ahead, so a slow link pushes back on the
sender as a real one does. Packet loss is not the proxy's business: the bench adds it with nftables on the
proxy's port. With --ready it writes the port it listens on into FILE once it accepts connections.
Only 127.0.0.1: the tests and benches never send elsewhere.
"""

import argparse
import asyncio
import collections
import os
import time

WINDOW = 16 * 1024  # bytes read ahead of the link per direction


class Link:
    """One direction: serialisation at `rate`, then `delay` seconds of propagation."""

    def __init__(self, reader, writer, delay, rate):
        self.reader, self.writer = reader, writer
        self.delay, self.rate = delay, rate
        self.queue = collections.deque()  # (release time, bytes or None for EOF)
        self.queued = 0
        self.free_at = 0.0  # when the link has serialised everything accepted so far
        self.ready = asyncio.Event()
        self.room = asyncio.Event()
        self.room.set()

    async def pump_in(self):
        try:
            while True:
                await self.room.wait()
                data = await self.reader.read(4096)
                now = time.monotonic()
                start = max(now, self.free_at)
                self.free_at = start + (len(data) / self.rate if self.rate > 0 else 0)
                self.queue.append((self.free_at + self.delay, data or None))
                self.queued += len(data)
                if self.queued >= WINDOW:
                    self.room.clear()
                self.ready.set()
                if not data:
                    return
        except (ConnectionError, OSError):
            self.queue.append((time.monotonic(), None))
            self.ready.set()

    async def pump_out(self):
        try:
            while True:
                await self.ready.wait()
                if not self.queue:
                    self.ready.clear()
                    continue
                release, data = self.queue.popleft()
                wait = release - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if data is None:
                    if self.writer.can_write_eof():
                        self.writer.write_eof()
                    return
                self.queued -= len(data)
                if self.queued < WINDOW:
                    self.room.set()
                self.writer.write(data)
                await self.writer.drain()
        except (ConnectionError, OSError):
            pass


async def serve(client_reader, client_writer, args):
    try:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", args.upstream)
    except OSError:
        client_writer.close()
        return
    links = [Link(client_reader, up_writer, args.delay_ms / 1000.0, args.rate),
             Link(up_reader, client_writer, args.delay_ms / 1000.0, args.rate)]
    tasks = [asyncio.ensure_future(t) for link in links for t in (link.pump_in(), link.pump_out())]
    await asyncio.wait(tasks, return_when=asyncio.ALL_COMPLETED)
    for w in (client_writer, up_writer):
        w.close()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("listen", type=int)
    parser.add_argument("upstream", type=int)
    parser.add_argument("--delay-ms", type=float, default=0)
    parser.add_argument("--rate", type=float, default=0)
    parser.add_argument("--ready")
    args = parser.parse_args()
    server = await asyncio.start_server(lambda r, w: serve(r, w, args), "127.0.0.1", args.listen)
    port = server.sockets[0].getsockname()[1]
    if args.ready:
        with open(args.ready + ".tmp", "w") as f:
            f.write(str(port))
        os.rename(args.ready + ".tmp", args.ready)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
