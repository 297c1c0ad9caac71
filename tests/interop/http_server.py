#!/usr/bin/env python3
"""A static HTTP server on 127.0.0.1 for the remote-input tests.

    http_server.py DIR PORT_FILE [--no-range]

Serves DIR with HEAD, GET and single byte-range GETs (206 with Content-Range and an
ETag), or, with --no-range, ignoring Range headers (200 and the whole file), as some
servers do. Writes the port it listens on to PORT_FILE.
"""
import hashlib
import http.server
import os
import sys

root, port_file = sys.argv[1], sys.argv[2]
honour_range = "--no-range" not in sys.argv


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _file(self):
        path = os.path.join(root, self.path.lstrip("/").split("?")[0])
        if not os.path.isfile(path):
            self.send_error(404)
            return None
        return path

    def _headers(self, path, status, length, extra=()):
        st = os.stat(path)
        self.send_response(status)
        self.send_header("Content-Length", str(length))
        self.send_header("ETag", '"' + hashlib.md5(f"{st.st_size}-{st.st_mtime_ns}".encode()).hexdigest() + '"')
        self.send_header("Last-Modified", self.date_time_string(int(st.st_mtime)))
        self.send_header("Accept-Ranges", "bytes" if honour_range else "none")
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()

    def do_HEAD(self):
        path = self._file()
        if path:
            self._headers(path, 200, os.path.getsize(path))

    def do_GET(self):
        path = self._file()
        if not path:
            return
        size = os.path.getsize(path)
        rng = self.headers.get("Range")
        with open(path, "rb") as f:
            if rng and honour_range and rng.startswith("bytes="):
                start, _, end = rng[6:].partition("-")
                start, end = int(start), min(int(end) if end else size - 1, size - 1)
                f.seek(start)
                body = f.read(end - start + 1)
                self._headers(path, 206, len(body), [("Content-Range", f"bytes {start}-{end}/{size}")])
            else:
                body = f.read()
                self._headers(path, 200, len(body))
        self.wfile.write(body)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
