#!/usr/bin/env python3
"""A CodeCommit Git stand-in for Kura's tests: `git http-backend` behind a small HTTP front on
loopback that accepts a request only when its Basic credentials are the SigV4 Git password AWS
would accept for its host and path, computed here independently with botocore (the way AWS's own
credential helper signs). With --basic USER:PASS it instead checks a plain user name and password
(a generic HTTPS remote); the environment variable STANDIN_BASIC=USER:PASS does the same and
keeps the password out of the command line (tests look for it in every process's command line).

Repositories live in ROOT/<name>.git (created on first use, as `kura mirror add --create` would
have made them exist). It prints `listening on PORT` once ready. Overlapping pushes to one
repository are written to ROOT/overlaps.log; every receive-pack to ROOT/pushes.log (a `start`
line when it begins, an `end` line when it is over).
Touch ROOT/slow to make each push sleep 3 s first (for kill tests).
"""
import argparse
import base64
import datetime
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ARGS = None
INFLIGHT = {}
LOCK = threading.Lock()


def expected_password(hostname, path, timestamp):
    creds = Credentials(ARGS.access_key, ARGS.secret_key, ARGS.session_token)
    signer = SigV4Auth(creds, "codecommit", ARGS.region)
    req = AWSRequest(method="GIT", url="https://%s%s" % (hostname, path))
    req.context["timestamp"] = timestamp
    canonical = "GIT\n%s\n\nhost:%s\n\nhost\n" % (path, hostname)
    return timestamp + "Z" + signer.signature(signer.string_to_sign(req, canonical), req)


def check_auth(handler, repo_path):
    header = handler.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return "no credentials"
    try:
        user, password = base64.b64decode(header[6:]).decode().split(":", 1)
    except Exception:
        return "malformed credentials"
    if ARGS.basic:
        return None if "%s:%s" % (user, password) == ARGS.basic else "wrong user name or password"
    want_user = ARGS.access_key + ("%" + ARGS.session_token if ARGS.session_token else "")
    if user != want_user:
        return "wrong user (access key id / session token)"
    if len(password) < 17 or password[15] != "Z":
        return "malformed SigV4 password"
    ts = password[:15]
    try:
        signed_at = datetime.datetime.strptime(ts, "%Y%m%dT%H%M%S").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return "malformed timestamp"
    age = abs((datetime.datetime.now(datetime.timezone.utc) - signed_at).total_seconds())
    if age > 300:
        return "stale signature (%d s old)" % age
    hostname = handler.headers.get("Host", "").split(":")[0]
    if password != expected_password(hostname, repo_path, ts):
        return "signature mismatch"
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("standin: " + (fmt % args) + "\n")

    def deny(self, code, why):
        body = (why + "\n").encode()
        self.send_response(code)
        if code == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="standin"')
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        # The request body (if any) was not read: this connection cannot carry another request.
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length", "0") or 0)
        return self.rfile.read(n) if n else b""

    def handle_git(self):
        path, _, query = self.path.partition("?")
        prefix = "/v1/repos/" if not ARGS.basic else "/"
        if not path.startswith(prefix):
            return self.deny(404, "not a repository path")
        rest = path[len(prefix):]
        name = rest.split("/")[0]
        if name.endswith(".git"):
            name = name[:-4]
        if not name or "/" in name or name.startswith("."):
            return self.deny(404, "bad repository name")
        why = check_auth(self, prefix + rest.split("/")[0])
        if why:
            self.log_message("refused %s: %s", self.path, why)
            return self.deny(401 if why == "no credentials" else 403, why)
        repo_dir = os.path.join(ARGS.root, name + ".git")
        with LOCK:
            if not os.path.isdir(repo_dir):
                subprocess.run(["git", "init", "-q", "--bare", repo_dir], check=True)
                subprocess.run(["git", "-C", repo_dir, "config", "http.receivepack", "true"], check=True)
        body = self.read_body() if self.command == "POST" else b""
        pushing = path.endswith("/git-receive-pack")
        if pushing:
            with LOCK:
                INFLIGHT[name] = INFLIGHT.get(name, 0) + 1
                if INFLIGHT[name] > 1:
                    with open(os.path.join(ARGS.root, "overlaps.log"), "a") as f:
                        f.write("%s %f\n" % (name, time.time()))
            with open(os.path.join(ARGS.root, "pushes.log"), "a") as f:
                f.write("%s %f start\n" % (name, time.time()))
            if os.path.exists(os.path.join(ARGS.root, "slow")):
                time.sleep(3)
        try:
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "GIT_PROJECT_ROOT": ARGS.root,
                "GIT_HTTP_EXPORT_ALL": "1",
                "REQUEST_METHOD": self.command,
                "PATH_INFO": "/" + name + ".git" + rest[len(rest.split("/")[0]):],
                "QUERY_STRING": query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "REMOTE_USER": "mirror",
                "REMOTE_ADDR": "127.0.0.1",
                "GIT_CONFIG_NOSYSTEM": "1",
                "HOME": ARGS.root,
            }
            if self.headers.get("Content-Encoding"):
                env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
            if self.headers.get("Git-Protocol"):
                env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
            proc = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True)
        finally:
            if pushing:
                with LOCK:
                    INFLIGHT[name] -= 1
                with open(os.path.join(ARGS.root, "pushes.log"), "a") as f:
                    f.write("%s %f end\n" % (name, time.time()))
        out = proc.stdout
        if b"\r\n\r\n" not in out:
            err = proc.stderr.decode(errors="replace").strip()
            self.log_message("git http-backend failed (%d): %s", proc.returncode, err)
            return self.deny(500, "git http-backend failed: " + err)
        head, _, payload = out.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.split(b"\r\n"):
            k, _, v = line.decode().partition(":")
            if k.lower() == "status":
                status = int(v.strip().split()[0])
            elif k and k.lower() != "content-length":
                headers.append((k, v.strip()))
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = handle_git
    do_POST = handle_git


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--access-key", default="")
    p.add_argument("--secret-key", default="")
    p.add_argument("--session-token", default=None)
    p.add_argument("--basic", default=os.environ.get("STANDIN_BASIC") or None,
                   help="USER:PASS for a plain HTTPS-style remote (default: $STANDIN_BASIC)")
    ARGS = p.parse_args()
    os.makedirs(ARGS.root, exist_ok=True)
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    print("listening on %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
