#!/usr/bin/env python3
"""A webhook receiver for Kura's push-trigger tests (standard library only).

Every POST to a path not starting with `/_` is a delivery: it is recorded (path, lower-cased
headers, raw body, parsed JSON, whether the HMAC signature is right, the status answered, arrival
time) in arrival order, and answered 200 `ok` unless told otherwise:

  POST /_fail   {"count": N, "status": 503}    the next N deliveries answer that status
  POST /_hang   {"count": N, "seconds": S}     the next N deliveries sleep S seconds first
  POST /_reset                                 forget records and armed behaviours
  GET  /_received                              the records, as a JSON array

With --secret S (or the environment variable WEBHOOK_RECEIVER_SECRET, which keeps the secret out
of the command line, where tests look for leaked secrets) a delivery whose `X-Kura-Signature-256`
is not `sha256=` + hex HMAC-SHA256(S, body) is answered 401. With --cert/--key it serves HTTPS.
It prints `listening on PORT` once it accepts connections.
"""
import argparse
import hashlib
import hmac
import json
import os
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
RECORDS = []
# Armed behaviours: the next FAIL["count"] deliveries answer FAIL["status"]; the next
# HANG["count"] deliveries sleep HANG["seconds"] first.
FAIL = {"count": 0, "status": 503}
HANG = {"count": 0, "seconds": 0.0}
SECRET = None


def reset():
    with LOCK:
        RECORDS.clear()
        FAIL.update(count=0, status=503)
        HANG.update(count=0, seconds=0.0)


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 so that clients may keep connections alive; every answer has a Content-Length.
    protocol_version = "HTTP/1.1"
    server_version = "kura-webhook-receiver"
    sys_version = ""

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def answer(self, status, body, content_type="text/plain; charset=utf-8"):
        data = body.encode() if isinstance(body, str) else body
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            # The client gave up (e.g. its timeout ran out while we hung): nothing to answer.
            self.close_connection = True

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = b""
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # trailers, up to the empty line
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def control_json(self, body):
        try:
            v = json.loads(body or b"{}")
            if not isinstance(v, dict):
                raise ValueError("not an object")
            return v
        except ValueError as e:
            self.answer(400, "bad JSON: %s" % e)
            return None

    def do_GET(self):
        if self.path == "/_received":
            with LOCK:
                data = json.dumps(RECORDS)
            self.answer(200, data, "application/json")
        else:
            self.answer(404, "not found")

    def do_POST(self):
        body = self.read_body()
        if self.path.startswith("/_"):
            self.control(body)
        else:
            self.deliver(body)

    def control(self, body):
        if self.path == "/_reset":
            reset()
            return self.answer(200, "ok")
        if self.path not in ("/_fail", "/_hang"):
            return self.answer(404, "not found")
        v = self.control_json(body)
        if v is None:
            return
        try:
            count = int(v.get("count", 1))
            with LOCK:
                if self.path == "/_fail":
                    FAIL.update(count=count, status=int(v.get("status", 503)))
                else:
                    HANG.update(count=count, seconds=float(v.get("seconds", 0)))
        except (TypeError, ValueError) as e:
            return self.answer(400, "bad value: %s" % e)
        self.answer(200, "ok")

    def deliver(self, raw):
        text = raw.decode("utf-8", errors="replace")
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        headers = {}
        for k, val in self.headers.items():
            k = k.lower()
            headers[k] = headers[k] + ", " + val if k in headers else val
        signature_ok = None
        if SECRET is not None:
            want = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
            signature_ok = hmac.compare_digest(
                headers.get("x-kura-signature-256", "").encode(), want.encode()
            )
        record = {
            "path": self.path,
            "headers": headers,
            "body": text,
            "json": parsed,
            "signature_ok": signature_ok,
            # filled in when answered: null while a hanging delivery waits
            "status": None,
            "at": time.time(),
        }
        with LOCK:
            RECORDS.append(record)
            hang = 0.0
            if HANG["count"] > 0:
                HANG["count"] -= 1
                hang = HANG["seconds"]
        if hang > 0:
            time.sleep(hang)
        with LOCK:
            if FAIL["count"] > 0:
                FAIL["count"] -= 1
                status, reply = FAIL["status"], "failing on purpose"
            elif signature_ok is False:
                status, reply = 401, "bad signature"
            else:
                status, reply = 200, "ok"
            record["status"] = status
        self.answer(status, reply)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    tls = None  # an ssl.SSLContext when serving HTTPS

    def finish_request(self, request, client_address):
        # Runs in the request's thread, so a slow or failed TLS handshake blocks no one else.
        if self.tls is not None:
            try:
                request.settimeout(30)
                request = self.tls.wrap_socket(request, server_side=True)
                request.settimeout(None)
            except (OSError, ssl.SSLError):
                # e.g. the client rejected our certificate: that is what some tests want
                try:
                    request.close()
                except OSError:
                    pass
                return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        # Clients dropping connections are expected; keep stderr quiet.
        pass


def main():
    global SECRET
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--secret")
    p.add_argument("--cert", help="PEM certificate (chain) to serve HTTPS with")
    p.add_argument("--key", help="PEM private key of --cert")
    args = p.parse_args()
    if bool(args.cert) != bool(args.key):
        p.error("--cert and --key go together")
    SECRET = args.secret if args.secret is not None else os.environ.get("WEBHOOK_RECEIVER_SECRET")

    server = Server(("127.0.0.1", args.port), Handler)
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        server.tls = ctx
    print("listening on %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
