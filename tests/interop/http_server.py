#!/usr/bin/env python3
"""A static HTTP server on 127.0.0.1 for the remote-input tests.

    http_server.py DIR PORT_FILE [--no-range] [--no-etag] [--log FILE] [--delay-ms MS] [--signed TOKEN]
                   [--by-query]

Serves DIR with HEAD, GET and single byte-range GETs (206 with Content-Range and an
ETag; 416 for a range past the end), or, with --no-range, ignoring Range headers (200 and the whole file), as some
servers do. Writes the port it listens on to PORT_FILE. With --log, appends one line per
request, "METHOD PATH BYTES START END" (bytes of body sent, the times the request
arrived and was answered, in seconds; written just before the answer), so tests can count requests per file and see which ran at the same time;
--delay-ms holds every request that long before answering (a slow server); --no-etag
sends no ETag (as some servers do not). --signed answers, like a presigned S3 URL for GET,
only GETs whose query holds "X-Amz-Signature=TOKEN", and refuses every HEAD (403).
--by-query serves, as download endpoints do, the file its "file" query parameter names
(`/download?file=a.nc`) whatever the path.
"""
import hashlib
import http.server
import os
import sys
import threading
import time
import urllib.parse

root, port_file = sys.argv[1], sys.argv[2]
honour_range = "--no-range" not in sys.argv
send_etag = "--no-etag" not in sys.argv
log_path = sys.argv[sys.argv.index("--log") + 1] if "--log" in sys.argv else None
delay = float(sys.argv[sys.argv.index("--delay-ms") + 1]) / 1000 if "--delay-ms" in sys.argv else 0.0
signature = sys.argv[sys.argv.index("--signed") + 1] if "--signed" in sys.argv else None
by_query = "--by-query" in sys.argv
log_lock = threading.Lock()


def log(method, path, sent, start):
    if log_path:
        with log_lock, open(log_path, "a") as f:
            f.write(f"{method} {path} {sent} {start:.6f} {time.time():.6f}\n")


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _signed(self):
        if signature is None:
            return True
        query = self.path.partition("?")[2].split("&")
        if self.command == "GET" and f"X-Amz-Signature={signature}" in query:
            return True
        self.send_error(403)
        return False

    def _file(self):
        if not self._signed():
            return None
        name = urllib.parse.unquote(self.path.lstrip("/").split("?")[0])
        if by_query:
            name = urllib.parse.parse_qs(self.path.partition("?")[2]).get("file", [name])[0]
        path = os.path.join(root, name)
        if not os.path.isfile(path):
            self.send_error(404)
            return None
        return path

    def _headers(self, path, status, length, extra=()):
        st = os.stat(path)
        self.send_response(status)
        self.send_header("Content-Length", str(length))
        if send_etag:
            self.send_header("ETag", '"' + hashlib.md5(f"{st.st_size}-{st.st_mtime_ns}".encode()).hexdigest() + '"')
        self.send_header("Last-Modified", self.date_time_string(int(st.st_mtime)))
        self.send_header("Accept-Ranges", "bytes" if honour_range else "none")
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()

    def do_HEAD(self):
        start = time.time()
        time.sleep(delay)
        path = self._file()
        log("HEAD", self.path, 0, start)
        if path:
            self._headers(path, 200, os.path.getsize(path))

    def do_GET(self):
        start = time.time()
        time.sleep(delay)
        path = self._file()
        if not path:
            log("GET", self.path, 0, start)
            return
        size = os.path.getsize(path)
        rng = self.headers.get("Range")
        with open(path, "rb") as f:
            if rng and honour_range and rng.startswith("bytes="):
                first, _, last = rng[6:].partition("-")
                first, last = int(first), min(int(last) if last else size - 1, size - 1)
                if first >= size:
                    log("GET", self.path, 0, start)
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                f.seek(first)
                body = f.read(last - first + 1)
                status, extra = 206, [("Content-Range", f"bytes {first}-{last}/{size}")]
            else:
                body = f.read()
                status, extra = 200, []
        # Logged before the answer goes out, so the log is complete when the client is done.
        log("GET", self.path, len(body), start)
        self._headers(path, status, len(body), extra)
        self.wfile.write(body)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
