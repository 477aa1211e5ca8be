"""N concurrent Server-Sent Events clients on one job's stream (bench/api-load.sh).

Each client opens GET /v1/exports/ID/events over its own connection and reads until the stream
ends; it counts the events it saw and whether the last was `done`. Prints one JSON line:
{"clients", "completed", "with_done", "events_min", "events_max", "seconds"}.
"""

import asyncio
import json
import sys
import time


async def client(host, port, path, results):
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 22)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    events, last = 0, None
    # Headers, then chunked SSE; event names are read from "event:" lines.
    async for raw in reader:
        line = raw.decode(errors="replace").strip()
        if line.startswith("event:"):
            events += 1
            last = line[6:].strip()
            if last == "done":
                break
    writer.close()
    results.append((events, last == "done"))


async def main(host, port, job, clients):
    path = f"/v1/exports/{job}/events"
    results = []
    started = time.monotonic()
    tasks = [asyncio.create_task(client(host, port, path, results)) for _ in range(clients)]
    await asyncio.wait(tasks, timeout=300)
    seconds = time.monotonic() - started
    counts = [e for e, _ in results] or [0]
    print(json.dumps({"clients": clients, "completed": len(results),
                      "with_done": sum(1 for _, d in results if d),
                      "events_min": min(counts), "events_max": max(counts),
                      "seconds": round(seconds, 2)}))


if __name__ == "__main__":
    host, port, job, clients = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    asyncio.run(main(host, port, job, clients))
