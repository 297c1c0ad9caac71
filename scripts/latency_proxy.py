#!/usr/bin/env python3
"""An HTTP proxy on 127.0.0.1 that adds a fixed latency to every request (benchmarks).

    latency_proxy.py UPSTREAM_HOST:PORT DELAY_MS PORT_FILE

Forwards each request to UPSTREAM after sleeping DELAY_MS, streams the answer back, and
counts requests and response bytes (printed to stderr every few seconds and at exit).
Writes the port it listens on to PORT_FILE.
"""
import http.client
import http.server
import os
import signal
import sys
import threading
import time

upstream, delay, port_file = sys.argv[1], float(sys.argv[2]) / 1000, sys.argv[3]
host, port = upstream.split(":")
stats = {"requests": 0, "bytes": 0}
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _forward(self):
        time.sleep(delay)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        conn = http.client.HTTPConnection(host, int(port), timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        with lock:
            stats["requests"] += 1
            stats["bytes"] += len(data)
        conn.close()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward


def report(*_):
    with open(port_file + ".stats", "w") as f:
        f.write(f"{stats['requests']} {stats['bytes']}\n")


def stop(*_):
    report()
    os._exit(0)


signal.signal(signal.SIGTERM, stop)
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
threading.Thread(target=server.serve_forever, daemon=True).start()
while True:
    time.sleep(1)
    report()
