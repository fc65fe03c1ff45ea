#!/usr/bin/python3
"""A deterministic HTTP file server for the demo and the end-to-end tests.

Two replicas serving the same directory must send the same bytes, so this server sends
no Date header and a fixed Server header (python's http.server stamps the time, which
differs between replicas at second boundaries). HTTP/1.0, one request per connection.

  httpd.py --dir DIR [--port 8080] [--bind 0.0.0.0]
"""
import argparse
import functools
import http.server
import socketserver


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


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--bind", default="0.0.0.0")
    a = ap.parse_args()
    handler = functools.partial(Handler, directory=a.dir)
    with Server((a.bind, a.port), handler) as s:
        s.serve_forever()


if __name__ == "__main__":
    main()
