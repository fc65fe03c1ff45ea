#!/usr/bin/python3
"""A deterministic HTTP file server for the demo and the end-to-end tests.

Two replicas serving the same directory must send the same bytes, so this server sends
no Date header and a fixed Server header (python's http.server stamps the time, which
differs between replicas at second boundaries). HTTP/1.0, one request per connection.

Uploads: PUT or POST of any path reads the body (Content-Length, at most 64 MiB) and
answers 200 with "<bytes> <sha256 hex>\n", stored nowhere; the same on both replicas for
the same body, so an upload is compared like any other exchange.

The one exception, for the demo: GET /clock answers "clock\n" with a Date header of the
server's clock moved by --clock-offset seconds. Two replicas started with different
offsets differ in that header on every request, as real servers do at second
boundaries: a divergence that lockstep explains and the @http normalization rules cover.

  httpd.py --dir DIR [--port 8080] [--bind 0.0.0.0] [--clock-offset SECONDS]
"""
import argparse
import email.utils
import functools
import hashlib
import http.server
import socketserver
import time


class Handler(http.server.SimpleHTTPRequestHandler):
    server_version = "lockstep-demo"
    sys_version = ""

    def send_response(self, code, message=None):
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Server", "lockstep-demo")

    def end_headers(self):
        # Last-Modified comes from the file's mtime: the same on both replicas only if the
        # files were copied with their times; drop it to be safe.
        self._headers_buffer = [h for h in self._headers_buffer
                                if not h.lower().startswith(b"last-modified")]
        super().end_headers()

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        if self.path != "/clock":
            super().do_GET()
            return
        body = b"clock\n"
        self.send_response(200)
        self.send_header("Date", email.utils.formatdate(time.time() + self.server.clock_offset,
                                                        usegmt=True))
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self):
        try:
            left = int(self.headers.get("Content-Length", ""))
        except ValueError:
            left = -1
        if left < 0 or left > 64 << 20:
            self.send_error(411 if left < 0 else 413)
            return
        h, n = hashlib.sha256(), 0
        while left > 0:
            chunk = self.rfile.read(min(left, 65536))
            if not chunk:
                return
            h.update(chunk)
            n += len(chunk)
            left -= len(chunk)
        body = f"{n} {h.hexdigest()}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_PUT


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--clock-offset", type=float, default=0.0)
    a = ap.parse_args()
    handler = functools.partial(Handler, directory=a.dir)
    with Server((a.bind, a.port), handler) as s:
        s.clock_offset = a.clock_offset
        s.serve_forever()


if __name__ == "__main__":
    main()
