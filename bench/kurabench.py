#!/usr/bin/env python3
"""Kura vs `git http-backend` (nginx + fcgiwrap): the benchmark driver behind `bench/run`.

Both servers serve the same bare repositories on loopback ports; every figure is measured in
alternating runs (Kura, reference, Kura, reference, ...) and reported as min/median/max per
server and as the ratio Kura / reference. Figure 6 (`--only pages`) compares Kura's browser
pages with cgit under the same nginx + fcgiwrap, on the same repository directory, against
absolute targets. Figure 7 (`--only triggers`) times push-to-webhook latency: from `git push`
to Kura's push-trigger POST arriving at a receiver inside this script (no peer: git
http-backend has no webhooks). See BENCHMARKS.md for what each figure means.
Standard library only (Python 3.11).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import glob
import http.client
import http.server
import json
import os
import platform
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in bench/
sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_repo import WORDS, GenParams, add_many_refs, describe, generate  # noqa: E402
from gen_repo import _git_env as gen_git_env  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
MiB = 1024 * 1024

MODES = {
    "quick": dict(
        gen=GenParams(commits=3000, files=2000, branches=200, tags=100, large_blobs=3, large_blob_mb=3.0),
        many_refs=5000,
        clone_runs=10,
        small_runs=15,
        small_batch=5,
        push_runs=8,
        push_batch=3,
        tput_runs=5,
        tput_levels={1: 3, 8: 8, 16: 16},  # concurrency -> requests per run
        page_runs=30,
        page_warmup=3,
        trigger_pushes=50,
    ),
    "full": dict(
        gen=GenParams(commits=20000, files=5000, branches=300, tags=150, large_blobs=4, large_blob_mb=4.0),
        many_refs=6000,
        clone_runs=15,
        small_runs=20,
        small_batch=5,
        push_runs=10,
        push_batch=3,
        tput_runs=5,
        tput_levels={1: 4, 8: 16, 16: 32},
        page_runs=30,
        page_warmup=3,
        trigger_pushes=50,
    ),
    # development smoke test only: a tiny repository, two runs of everything
    "tiny": dict(
        gen=GenParams(commits=300, files=200, branches=20, tags=10, large_blobs=1, large_blob_mb=0.5),
        many_refs=300,
        clone_runs=2,
        small_runs=3,
        small_batch=2,
        push_runs=2,
        push_batch=2,
        tput_runs=2,
        tput_levels={1: 1, 8: 8, 16: 16},
        page_runs=5,
        page_warmup=1,
        trigger_pushes=10,
    ),
}
# The pages group (figure 6) always uses the 20 000-commit repository (generated once, ~40 s,
# then cached), also in quick mode; tiny uses its own tiny repository.
for _m in ("quick", "full"):
    MODES[_m]["pages_gen"] = MODES["full"]["gen"]
MODES["tiny"]["pages_gen"] = MODES["tiny"]["gen"]

GROUPS = ("clone", "throughput", "refs", "push", "cache", "stages", "memory", "pages", "triggers")
# the groups measured against a peer served by nginx + fcgiwrap (git http-backend or cgit)
PEER_GROUPS = ("clone", "throughput", "refs", "push", "cache", "stages", "pages")

TARGETS = {
    # figure id -> (description, max ratio); lower is better for all of them
    "clone.server_cpu": ("server CPU per full clone", 0.3),
    "refs.ls-remote": ("ls-remote", 1.0),
    "refs.noop-fetch": ("no-op fetch", 1.0),
    "push": ("push", 1.1),
    "cache.hit.cpu": ("server CPU per repeated identical clone (pack cache)", 0.1),
}
# figure 8: Kura's own RSS around a 200 MB push (absolute targets, MB)
MEMORY_PUSH_MB = 200
MEMORY_PEAK_TARGET_MB = 40.0
MEMORY_AFTER_TARGET_MB = 25.0
MEMORY_AFTER_S = 60
IDLE_RSS_TARGET_MB = 25.0

# figure 6, the browser pages: figure id -> (description, target for Kura's median in ms)
PAGE_TARGETS = {
    "pages.tree": ("tree with the last commit per entry", 10.0),
    "pages.blob": ("highlighted file of 1 000 lines", 10.0),
    "pages.log": ("log page (30 commits)", 10.0),
    "pages.commit": ("commit with its diff", 20.0),
    "pages.pathlog": ("path log", 25.0),
    "pages.search": ("code search in a ref", 100.0),
    "pages.repeat": ("repeated request for a page addressed by commit id", 2.0),
}
PAGES_VERSION = 2  # bump when make_pages_repo's output changes
PAGES_FILE = "src/pages/render.rs"  # the 1 000-line file added on top of the generated history
PAGES_FILE_LINES = 1000
# Kura keeps what a page computed per object id (highlighted files by blob id, folders with
# last commits and diffs by commit id), so a first fetch needs an object it has not seen: the
# pages repository ends with this many commits that each change one line of PAGES_FILE, and the
# first-fetch tree and file figures ask for a different one of them in every round.
PAGES_FILE_VERSIONS = 60
PAGES_RARE_WORD = "frobnicate"  # only in PAGES_FILE: a search has to read every file
PAGES_COMMON_WORD = "bitmap"  # in most files: a search stops at Kura's 200-match limit
CGIT_CGI = "/usr/lib/cgit/cgit.cgi"

# figure 7, push triggers: Kura's median push-to-webhook latency (from just before `git push`
# starts to the event's arrival at the receiver, so it includes the pusher's own wait)
TRIGGER_TARGET_S = 1.0
TRIGGER_TARGET = "≤ 1 s (p50, including the pusher's wait)"
TRIGGER_REPO = "triggers"  # bench/triggers, created empty
TRIGGER_WAIT_S = 10.0  # longest wait for one push's event before the next push


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# --------------------------------------------------------------------------------------------
# /proc: CPU and memory of a process tree


def _stat(pid: int):
    """(utime+stime, cutime+cstime) in ticks and RSS in bytes, or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            s = f.read()
    except OSError:
        return None
    f_ = s[s.rfind(b")") + 2 :].split()
    return int(f_[11]) + int(f_[12]), int(f_[13]) + int(f_[14]), int(f_[21]) * PAGE


def _children(pid: int) -> list[int]:
    out = []
    for task in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            with open(task) as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def descendants(roots: list[int]) -> list[int]:
    seen, todo = [], list(roots)
    while todo:
        p = todo.pop()
        for c in _children(p):
            if c not in seen:
                seen.append(c)
                todo.append(c)
    return seen


def tree_cpu(roots: list[int], resident=()) -> tuple[float, float]:
    """CPU seconds (user + system) of a process tree, including reaped children, split into
    (server processes: the roots and the long-lived `resident` descendants, their own time;
    request processes: every other descendant and everything reaped)."""
    own = kids = 0
    for pid in list(roots) + descendants(roots):
        st = _stat(pid)
        if not st:
            continue
        if pid in roots or pid in resident:
            own += st[0]
            kids += st[1]
        else:
            kids += st[0] + st[1]
    return own / CLK_TCK, kids / CLK_TCK


def rss_split(pid: int) -> dict:
    """RSS of one process split as /proc/PID/status does: anonymous memory (the heap) and
    file-backed pages (e.g. mmapped pack files, which the kernel can drop), in MiB."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("RssAnon", "RssFile", "RssShmem"):
                    out[k] = int(v.split()[0]) / 1024
    except OSError:
        pass
    return {"anon_mib": out.get("RssAnon", 0.0), "file_mib": out.get("RssFile", 0.0) + out.get("RssShmem", 0.0)}


def rss_of(pids) -> int:
    total = 0
    for pid in pids:
        st = _stat(pid)
        if st:
            total += st[2]
    return total


class Sampler(threading.Thread):
    """Samples the RSS of a process tree every `interval` s; keeps the peaks (total, server
    processes, request processes)."""

    def __init__(self, roots: list[int], resident=(), interval: float = 0.02):
        super().__init__(daemon=True)
        self.roots, self.resident, self.interval = roots, set(resident), interval
        self.peak_total = self.peak_roots = self.peak_children = 0
        self._stop_evt = threading.Event()

    def sample(self):
        """Server processes (roots and resident workers) and request processes separately."""
        tree = descendants(self.roots)
        r = rss_of(list(self.roots) + [p for p in tree if p in self.resident])
        c = rss_of([p for p in tree if p not in self.resident])
        self.peak_roots = max(self.peak_roots, r)
        self.peak_children = max(self.peak_children, c)
        self.peak_total = max(self.peak_total, r + c)

    def run(self):
        while not self._stop_evt.is_set():
            self.sample()
            self._stop_evt.wait(self.interval)

    def stop(self):
        self._stop_evt.set()
        self.join()
        self.sample()


# --------------------------------------------------------------------------------------------
# processes we start (stopped by PID at the end, also on error and Ctrl-C)


class Procs:
    def __init__(self, pidfile: Path):
        self.pidfile = pidfile
        self.items: list[tuple[str, subprocess.Popen]] = []

    def start(self, name, argv, **kw) -> subprocess.Popen:
        p = subprocess.Popen(argv, start_new_session=True, **kw)
        self.items.append((name, p))
        self._save()
        return p

    def _save(self):
        rows = []
        for name, p in self.items:
            try:
                cmd = Path(f"/proc/{p.pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                cmd = ""
            rows.append({"name": name, "pid": p.pid, "cmdline": cmd})
        self.pidfile.write_text(json.dumps(rows))

    @staticmethod
    def reap_stale(pidfile: Path):
        """Stops servers left running by an earlier run that was killed (matched by PID and
        command line, so an unrelated process that reused the PID is left alone)."""
        if not pidfile.exists():
            return
        try:
            rows = json.loads(pidfile.read_text())
        except ValueError:
            rows = []
        for r in rows:
            try:
                cmd = Path(f"/proc/{r['pid']}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if r["cmdline"] and cmd == r["cmdline"]:
                log(f"stopping {r['name']} (pid {r['pid']}) left over from an earlier run")
                kids = descendants([r["pid"]])
                for pid in [r["pid"]] + kids:
                    try:
                        os.kill(pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass
                time.sleep(1)
        pidfile.unlink()

    def stop_all(self):
        for name, p in reversed(self.items):
            if p.poll() is not None:
                continue
            kids = descendants([p.pid])
            try:
                if name == "fcgiwrap":
                    # its prefork workers outlive a SIGTERM of the parent: stop the whole group
                    # (it is our own process group: started with start_new_session)
                    os.killpg(p.pid, signal.SIGTERM)
                else:
                    p.send_signal(signal.SIGQUIT if name == "nginx" else signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            for pid in kids:  # e.g. fcgiwrap's prefork workers, if they outlived their parent
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        self.items.clear()
        if self.pidfile.exists():
            self.pidfile.unlink()



# --------------------------------------------------------------------------------------------
# helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(argv, check=True, quiet=False, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    r = subprocess.run([str(a) for a in argv], **kw)
    if check and r.returncode != 0:
        err = (r.stderr or b"").decode(errors="replace") if isinstance(r.stderr, bytes) else (r.stderr or "")
        raise BenchError(f"{' '.join(map(str, argv))} failed ({r.returncode}): {err.strip()[-2000:]}")
    return r


def wait_http(url: str, timeout=30.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status < 500:
                    return
        except Exception:
            time.sleep(0.1)
    raise BenchError(f"{url} did not answer within {timeout:.0f} s")


def summary(xs: list[float]) -> dict:
    return {"min": min(xs), "median": statistics.median(xs), "max": max(xs), "n": len(xs)}


def pkt(line: bytes) -> bytes:
    return b"%04x" % (len(line) + 4) + line


def p90(xs: list[float]) -> float:
    if len(xs) < 2:
        return xs[0]
    return statistics.quantiles(xs, n=10, method="inclusive")[8]


class PageClient:
    """GETs over one persistent HTTP/1.1 connection (reopened only if the server closes it);
    each request timed from sending it to reading the last byte of the body."""

    def __init__(self, base: str):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port
        self.conn: http.client.HTTPConnection | None = None
        self.connects = 0

    def _connect(self):
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        self.conn.connect()
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connects += 1

    def get(self, path: str) -> tuple[int, bytes, float, dict]:
        for attempt in (0, 1):
            if self.conn is None:
                self._connect()
            try:
                t0 = time.perf_counter()
                self.conn.request("GET", path, headers={"Accept": "text/html", "User-Agent": "kura-bench"})
                r = self.conn.getresponse()
                body = r.read()
                took = time.perf_counter() - t0
            except (http.client.RemoteDisconnected, http.client.CannotSendRequest, ConnectionError):
                self.close()
                if attempt:
                    raise
                continue
            headers = {k.lower(): v for k, v in r.getheaders()}
            if r.will_close:
                self.close()
            return r.status, body, took, headers
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class WebhookReceiver:
    """A webhook endpoint on 127.0.0.1 (http.server in a thread) that records, for every POST,
    its arrival time (time.monotonic() once the whole body is read, when a real receiver could
    act on it), the JSON body's `after` and `ref`, and the X-Kura-* headers; answers 200 at
    once."""

    def __init__(self):
        self.events: list[dict] = []
        self.cond = threading.Condition()
        recv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as most real receivers allow

            def do_POST(self):  # noqa: N802
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                arrived = time.monotonic()
                try:
                    doc = json.loads(body)
                except ValueError:
                    doc = {}
                ev = {
                    "t": arrived,
                    "after": doc.get("after") if isinstance(doc, dict) else None,
                    "ref": doc.get("ref") if isinstance(doc, dict) else None,
                    "path": self.path,
                    "event": self.headers.get("X-Kura-Event"),
                    "delivery": self.headers.get("X-Kura-Delivery"),
                    "bytes": len(body),
                }
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "3")
                self.end_headers()
                self.wfile.write(b"ok\n")
                with recv.cond:
                    recv.events.append(ev)
                    recv.cond.notify_all()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    def url(self, path="/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_for(self, after: str, deadline: float) -> dict | None:
        """The first event whose `after` is `after`, waiting until time.monotonic() >= deadline."""
        with self.cond:
            while True:
                for ev in self.events:
                    if ev["after"] == after:
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# --------------------------------------------------------------------------------------------
# servers


@dataclass
class Server:
    name: str  # "kura" or "reference"
    base: str
    roots: list[int]
    idle: set = field(default_factory=set)  # long-lived descendants (workers) at idle
    push_header: str | None = None
    rusage_file: Path | None = None  # CPU of exited CGI processes (reference only)

    def cpu(self) -> tuple[float, float]:
        """CPU seconds used so far by the server, as (server processes, request processes):
        live processes and reaped children from /proc, plus, for the reference, what its CGI
        processes reported at exit (see cgi_rusage.c)."""
        own, kids = tree_cpu(self.roots, self.idle)
        if self.rusage_file is not None and self.rusage_file.exists():
            with open(self.rusage_file) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) == 4:
                        kids += float(parts[1])
        return own, kids

    def url(self, repo_key: str) -> str:
        return f"{self.base}/{repo_key}.git"

    def quiesce(self, timeout=60.0):
        """Waits until no request process (git child) is left in the tree."""
        end = time.time() + timeout
        while time.time() < end:
            extra = [p for p in descendants(self.roots) if p not in self.idle]
            if not extra:
                return
            time.sleep(0.02)
        log(f"warning: {self.name} still has child processes after {timeout:.0f} s")


@dataclass
class Repo:
    key: str  # name on both servers
    label: str
    source: Path  # bare repository with the content (never served itself)
    default_branch: str
    kind: str  # gen | many | user | push
    info: dict = field(default_factory=dict)
    kura_dir: Path | None = None
    ref_dir: Path | None = None


class Bench:
    def __init__(self, args):
        self.args = args
        self.mode = dict(MODES[args.mode])
        if args.runs:
            for k in ("clone_runs", "small_runs", "push_runs", "tput_runs", "page_runs", "trigger_pushes"):
                self.mode[k] = args.runs
        self.only = None
        if args.only:
            self.only = {g.strip() for g in args.only.split(",") if g.strip()}
            unknown = self.only - set(GROUPS)
            if unknown:
                raise BenchError(f"--only: unknown group(s) {', '.join(sorted(unknown))} (known: {', '.join(GROUPS)})")
        self.out = Path(args.out).resolve()
        self.cache = ROOT / "bench" / "out" / "cache"  # shared by every --out
        self.work = self.out / "run"
        self.git = shutil.which("git")
        if not self.git:
            raise BenchError("git is not installed")
        self.git = os.path.realpath(self.git)
        self.git_dir = os.path.dirname(self.git)
        path = [self.git_dir] + "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".split(":")
        self.path = ":".join(dict.fromkeys(path))
        self.procs = Procs(self.out / "pids.json")
        self.results: dict = {"figures": [], "notes": []}
        self.repos: list[Repo] = []
        self.kura: Server | None = None
        self.ref: Server | None = None
        self.maintained = False
        self.cgit: dict | None = None  # base URL and set-up of cgit (figure 6)
        self.receiver: WebhookReceiver | None = None  # the webhook endpoint (figure 7)

    def want(self, group: str) -> bool:
        return self.only is None or group in self.only

    def wants_peer(self) -> bool:
        """Whether a selected group needs the reference (nginx + fcgiwrap + git http-backend / cgit)."""
        return any(self.want(g) for g in PEER_GROUPS)

    # ---------------------------------------------------------------- set-up

    def client_env(self) -> dict:
        home = self.work / "client-home"
        home.mkdir(parents=True, exist_ok=True)
        return {
            "PATH": self.path,
            "HOME": str(home),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_TERMINAL_PROMPT": "0",
            "LC_ALL": "C",
            "TZ": "UTC",
        }

    def install_packages(self):
        if not self.wants_peer():
            return
        need = [p for p, exe in (("nginx", "nginx"), ("fcgiwrap", "fcgiwrap"), ("gcc", "cc"))
                if not shutil.which(exe) and not os.path.exists(f"/usr/sbin/{exe}")]
        if self.want("pages") and not os.path.exists(CGIT_CGI):
            need.append("cgit")
        if not need:
            return
        if self.args.no_install:
            raise BenchError(f"{', '.join(need)} missing and --no-install given")
        log(f"installing {' '.join(need)} with apt-get")
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        r = run(sudo + ["apt-get", "install", "-y", *need], check=False, env=env)
        if r.returncode != 0:
            run(sudo + ["apt-get", "update"], env=env)
            run(sudo + ["apt-get", "install", "-y", *need], env=env)

    def exe(self, name) -> str:
        return shutil.which(name) or f"/usr/sbin/{name}"

    def build_kura(self) -> str:
        if self.args.kura_bin:
            return str(Path(self.args.kura_bin).resolve())
        target = os.environ.get("CARGO_TARGET_DIR") or str(Path.home() / ".cache/kura-target")
        binary = Path(target) / "release" / "kura"
        if self.args.no_build:
            if not binary.exists():
                raise BenchError(f"{binary} does not exist (drop --no-build)")
            return str(binary)
        log(f"building kura (cargo build --release -p kura, CARGO_TARGET_DIR={target})")
        t0 = time.time()
        r = subprocess.run(
            ["cargo", "build", "--release", "-p", "kura"],
            cwd=ROOT,
            env=dict(os.environ, CARGO_TARGET_DIR=target),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        if r.returncode != 0:
            sys.stderr.write(r.stdout.decode(errors="replace")[-4000:])
            raise BenchError("cargo build --release -p kura failed (see above)")
        log(f"  built in {time.time() - t0:.0f} s")
        return str(binary)

    def generated(self, p: GenParams) -> Path:
        gen = self.cache / f"gen-{p.key()}.git"
        if not gen.exists():
            log(f"generating {p.label()} into {gen.name}")
            t0 = time.time()
            generate(p, gen, self.git, log=log)
            log(f"  generated in {time.time() - t0:.0f} s")
        return gen

    def prepare_repos(self):
        """The repositories the selected groups use (all of them without --only)."""
        self.cache.mkdir(parents=True, exist_ok=True)
        p: GenParams = self.mode["gen"]
        reads = any(self.want(g) for g in ("clone", "throughput", "refs"))
        if reads or self.want("push"):
            gen = self.generated(p)
            gen_info = describe(gen, self.git)
        if reads:
            self.repos.append(Repo("gen", p.label(), gen, "main", "gen", gen_info))
        if reads or self.want("cache") or self.want("stages"):
            # the shape of a real project's history: 20 000 commits, hundreds of refs, mostly
            # small text files and some binaries (the pages' repository, generated once)
            rp: GenParams = self.mode["pages_gen"]
            real = self.generated(rp)
            self.repos.append(Repo("real", f"real-shaped: {rp.label()}", real, "main", "real",
                                   describe(real, self.git)))
        if self.want("refs"):
            many_n = self.mode["many_refs"]
            many = self.cache / f"manyrefs-{p.key()}-{many_n}.git"
            if not many.exists():
                log(f"adding {many_n} refs to a copy of it ({many.name})")
                add_many_refs(gen, many, many_n, self.git)
            self.repos.append(
                Repo("manyrefs", f"the generated repository plus {many_n} refs", many, "main", "many",
                     describe(many, self.git))
            )
        src_dir = self.work / "sources"
        for i, path in enumerate((self.args.repo or []) if reads or self.want("cache") else []):
            path = Path(path).resolve()
            base = re.sub(r"[^A-Za-z0-9._-]", "-", path.name.removesuffix(".git")).strip(".-") or "repo"
            key = f"user{i + 1}-{base}"[:90]
            dest = src_dir / f"{key}.git"
            log(f"copying {path} (git clone --bare --no-local) for {key}")
            run([self.git, "clone", "--bare", "--no-local", "--quiet", path, dest], env=self.client_env())
            head = run([self.git, "-C", dest, "symbolic-ref", "--short", "HEAD"], check=False,
                       env=self.client_env()).stdout.decode().strip()
            self.repos.append(Repo(key, f"{path}", dest, head or "main", "user", describe(dest, self.git)))
        if self.want("push"):
            self.repos.append(Repo("push", "copy of the generated repository, pushed to", gen, "main", "push",
                                   dict(gen_info)))

        if self.want("pages"):
            pp: GenParams = self.mode["pages_gen"]
            base = self.generated(pp)
            pages = self.cache / f"pages-{pp.key()}-v{PAGES_VERSION}.git"
            if not pages.exists():
                log(f"adding {PAGES_FILE} ({PAGES_FILE_LINES} lines) on top of a copy of {base.name} ({pages.name})")
                make_pages_repo(base, pages, self.git)
            self.repos.append(Repo("pages", f"{pp.label()} plus a commit adding {PAGES_FILE} "
                                   f"({PAGES_FILE_LINES} lines) and {PAGES_FILE_VERSIONS} commits that each change "
                                   "its last line", pages, "main", "pages", describe(pages, self.git)))
        if not self.repos and not self.want("triggers") and not self.want("memory"):
            raise BenchError("nothing to measure")

    def kura_cli(self, *args, stdin=None) -> str:
        r = run([self.kura_bin, *args], env=self.kura_env, input=stdin)
        return r.stdout.decode()

    def setup_kura(self):
        data = self.work / "kura-data"
        self.kura_port = free_port()
        self.kura_env = {
            "PATH": self.path,
            "HOME": str(self.work / "kura-home"),
            "KURA_DATA_DIR": str(data),
            "KURA_LISTEN": f"127.0.0.1:{self.kura_port}",
            "KURA_ADMIN_PASSWORD": secrets.token_urlsafe(18),
            "KURA_SHUTDOWN_GRACE": "3s",
            "LC_ALL": "C",
            # figures 1-4 measure git's own work: the pack cache is off for them, and on for
            # figure 9 (Kura is restarted for it)
            "KURA_PACK_CACHE_DIR": str(self.work / "kura-pack-cache"),
            "KURA_PACK_CACHE_SIZE": "0",
            "KURA_LOG_FORMAT": "json",
        }
        if self.want("triggers"):
            # webhooks may only reach the allowed targets: here the receiver on loopback
            self.kura_env["KURA_TRIGGER_ALLOWED_TARGETS"] = "127.0.0.1"
        (self.work / "kura-home").mkdir(parents=True, exist_ok=True)
        cfg = self.kura_cli("config")
        # background maintenance would repack repositories in the middle of a measurement:
        # the benchmark runs `kura repo maintain` itself, before measuring
        if "maintenance_interval" in cfg:
            self.kura_env["KURA_MAINTENANCE_INTERVAL"] = "0s"
            self.kura_env["KURA_MAINTENANCE_DEBOUNCE"] = "0s"
            self.results["notes"].append(
                "Kura's background maintenance was off during the run (KURA_MAINTENANCE_INTERVAL=0s, "
                "KURA_MAINTENANCE_DEBOUNCE=0s) so that no repack happens mid-measurement."
            )
        # only `kura serve` creates a data folder: start it once and stop it again
        init_log = open(self.work / "kura-init.log", "wb")
        init = subprocess.Popen([self.kura_bin, "serve"], env=self.kura_env, stdout=init_log,
                                stderr=subprocess.STDOUT, cwd=self.work)
        try:
            wait_http(f"http://127.0.0.1:{self.kura_port}/healthz")
        finally:
            init.terminate()
            init.wait(timeout=60)
        self.kura_cli("group", "add", "bench")
        self.kura_cli("user", "add", "benchpush", "--password-stdin", stdin=secrets.token_urlsafe(18).encode() + b"\n")
        self.kura_cli("group", "member", "add", "bench", "benchpush", "--role", "write")
        token = self.kura_cli("token", "create", "benchpush", "--scope", "write").strip().split()[-1]
        repo_root = data / "repositories"
        for repo in self.repos:
            before = set(glob.glob(str(repo_root / "??" / "??" / "*.git")))
            self.kura_cli("repo", "create", f"bench/{repo.key}", "--public", "--default-branch", repo.default_branch)
            # where it lives: `kura repo show` says so (newer Kura); else the one new directory
            shown = run([self.kura_bin, "repo", "show", f"bench/{repo.key}"], check=False, env=self.kura_env)
            m = re.search(r"^storage:\s*(\S.*?)\s*$", shown.stdout.decode(errors="replace"), re.M)
            new = set(glob.glob(str(repo_root / "??" / "??" / "*.git"))) - before
            if shown.returncode == 0 and m and Path(m.group(1)).is_dir():
                repo.kura_dir = Path(m.group(1))
            elif len(new) == 1:
                repo.kura_dir = Path(new.pop())
            else:
                raise BenchError(f"cannot find the directory of bench/{repo.key} under {repo_root}")
            install_content(repo.source, repo.kura_dir)
        # maintenance hook: `kura repo maintain` once it exists
        r = run([self.kura_bin, "repo", "maintain", "--help"], check=False, env=self.kura_env)
        self.maintain_cmd = None
        if r.returncode == 0 and not self.args.no_maintain:
            help_text = r.stdout.decode()
            self.maintain_cmd = ["repo", "maintain", "NS/NAME"] + (["--full"] if "--full" in help_text else [])
            # the reference keeps unmaintained copies of its own
            self.maintained = True
            for repo in self.repos:
                t0 = time.time()
                self.kura_cli(*[a.replace("NS/NAME", f"bench/{repo.key}") for a in self.maintain_cmd])
                repo.info["kura_maintain_seconds"] = round(time.time() - t0, 2)
                repo.info["kura_after_maintain"] = repo_state(repo.kura_dir)
                log(f"  kura {' '.join(self.maintain_cmd).replace('NS/NAME', 'bench/' + repo.key)}: "
                    f"{repo.info['kura_maintain_seconds']} s, {repo.info['kura_after_maintain']}")
        self.maintain_available = r.returncode == 0

        if self.want("memory"):
            self.kura_cli("repo", "create", "bench/memory", "--default-branch", "main")
        self.kura_token = token
        auth = base64.b64encode(f"benchpush:{token}".encode()).decode()
        base = f"http://127.0.0.1:{self.kura_port}"
        self.kura = Server("kura", base + "/bench", [], push_header=f"Authorization: Basic {auth}")
        self.start_kura()

    def start_kura(self, **env):
        """(Re)starts `kura serve` with `env` added to its environment for good; a new process
        has an empty pack cache."""
        for item in [i for i in self.procs.items if i[0] == "kura"]:
            item[1].terminate()
            item[1].wait(timeout=60)
            self.procs.items.remove(item)
        self.kura_env.update(env)
        log_f = open(self.work / "kura.log", "ab")
        p = self.procs.start("kura", [self.kura_bin, "serve"], env=self.kura_env, stdout=log_f,
                             stderr=subprocess.STDOUT, cwd=self.work)
        wait_http(f"http://127.0.0.1:{self.kura_port}/healthz")
        self.kura.roots = [p.pid]
        self.kura.idle = set(descendants([p.pid]))

    def setup_reference(self):
        rroot = self.work / "ref-root"
        rroot.mkdir(parents=True)
        for repo in self.repos:
            dest = rroot / f"{repo.key}.git"
            if repo.kind == "pages":
                # cgit reads the very files Kura serves (maintained: one pack, bitmap, commit-graph
                # with changed-path filters, as `git gc` would leave a cgit host's repositories)
                dest.symlink_to(repo.kura_dir)
            elif self.maintained or repo.kind == "push":
                # own unmaintained copy (Kura's maintenance must not touch it; pushes need
                # their own starting state)
                dest.mkdir()
                install_content(repo.source, dest, init_git=self.git)
            else:
                dest.symlink_to(repo.kura_dir)
            repo.ref_dir = dest
            repo.info["reference_state"] = repo_state(dest)
        ngx = self.work / "nginx"
        for d in ("logs", "tmp", "home"):
            (ngx / d).mkdir(parents=True, exist_ok=True)
        sock = ngx / "fcgiwrap.sock"
        workers = max(self.mode["tput_levels"]) + 4
        fcgi_log = open(ngx / "logs" / "fcgiwrap.log", "wb")
        fp = self.procs.start("fcgiwrap", [self.exe("fcgiwrap"), "-c", str(workers), "-s", f"unix:{sock}"],
                              env={"PATH": self.path}, stdout=fcgi_log, stderr=subprocess.STDOUT)
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        else:
            raise BenchError("fcgiwrap did not create its socket")
        self.ref_port = free_port()
        backend = os.path.join(
            run([self.git, "--exec-path"]).stdout.decode().strip(), "git-http-backend"
        )
        shim = self.build_shim(ngx)
        rusage_file = ngx / "cgi-rusage.log"
        user = "user root;\n" if os.geteuid() == 0 else ""
        cgit_server = ""
        pages_repo = next((r for r in self.repos if r.kind == "pages"), None)
        if pages_repo is not None:
            # cgit under the same nginx + fcgiwrap, on a port of its own (URLs from the root)
            self.cgit_port = free_port()
            cgitrc = ngx / "cgitrc"
            cgitrc.write_text(
                "# generated by bench/kurabench.py: uncached, URLs from /\n"
                "cache-size=0\n"
                "virtual-root=/\n"
                "enable-commit-graph=1\n"
                "# the same page size as Kura's log (cgit's default is 50)\n"
                "max-commit-count=30\n"
                "root-title=kura bench\n"
                f"repo.url={pages_repo.key}\n"
                f"repo.path={os.path.realpath(pages_repo.kura_dir)}\n"
                f"repo.defbranch={pages_repo.default_branch}\n"
            )
            cgit_server = f"""
    server {{
        listen 127.0.0.1:{self.cgit_port};
        location / {{
            include /etc/nginx/fastcgi_params;
            fastcgi_pass unix:{sock};
            fastcgi_param SCRIPT_FILENAME {CGIT_CGI};
            fastcgi_param PATH_INFO $uri;
            fastcgi_param QUERY_STRING $args;
            fastcgi_param CGIT_CONFIG {cgitrc};
            fastcgi_param PATH {self.path};
            fastcgi_param HOME {ngx}/home;
            fastcgi_param GIT_CONFIG_NOSYSTEM 1;
            fastcgi_param GIT_CONFIG_GLOBAL /dev/null;
        }}
    }}"""
        conf = f"""{user}worker_processes auto;
pid {ngx}/nginx.pid;
error_log {ngx}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {ngx}/tmp/body;
    fastcgi_temp_path {ngx}/tmp/fastcgi;
    proxy_temp_path {ngx}/tmp/proxy;
    uwsgi_temp_path {ngx}/tmp/uwsgi;
    scgi_temp_path {ngx}/tmp/scgi;
    client_max_body_size 0;
    server {{
        listen 127.0.0.1:{self.ref_port};
        location / {{
            include /etc/nginx/fastcgi_params;
            fastcgi_pass unix:{sock};
            fastcgi_param SCRIPT_FILENAME {backend};
            fastcgi_param PATH_INFO $uri;
            fastcgi_param GIT_PROJECT_ROOT {rroot};
            fastcgi_param GIT_HTTP_EXPORT_ALL 1;
            fastcgi_param PATH {self.path};
            fastcgi_param HOME {ngx}/home;
            fastcgi_param GIT_CONFIG_NOSYSTEM 1;
            fastcgi_param GIT_CONFIG_GLOBAL /dev/null;
            fastcgi_param GIT_CONFIG_COUNT 1;
            fastcgi_param GIT_CONFIG_KEY_0 http.receivepack;
            fastcgi_param GIT_CONFIG_VALUE_0 true;
            fastcgi_param LD_PRELOAD {shim};
            fastcgi_param BENCH_RUSAGE_FILE {rusage_file};
            fastcgi_buffering off;
            fastcgi_read_timeout 600s;
            fastcgi_send_timeout 600s;
        }}
    }}{cgit_server}
}}
"""
        (ngx / "nginx.conf").write_text(conf)
        run([self.exe("nginx"), "-t", "-p", ngx, "-c", ngx / "nginx.conf"])
        np_ = self.procs.start("nginx", [self.exe("nginx"), "-p", str(ngx), "-c", str(ngx / "nginx.conf"),
                                         "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{self.ref_port}"
        wait_http(base + f"/{self.repos[0].key}.git/info/refs?service=git-upload-pack")
        self.ref = Server("reference", base, [np_.pid, fp.pid], rusage_file=rusage_file)
        time.sleep(0.5)
        self.ref.idle = set(descendants(self.ref.roots))
        self.results["reference_setup"] = {
            "nginx": run([self.exe("nginx"), "-v"]).stderr.decode().strip(),
            "fcgiwrap_workers": workers,
            "http_backend": backend,
            "config": str(ngx / "nginx.conf"),
        }
        if pages_repo is not None:
            cgit_base = f"http://127.0.0.1:{self.cgit_port}"
            wait_http(cgit_base + f"/{pages_repo.key}/")
            ver = run(["dpkg-query", "-W", "-f", "${Version}", "cgit"], check=False).stdout.decode().strip()
            self.cgit = {"base": cgit_base, "port": self.cgit_port, "config": str(ngx / "cgitrc"),
                         "version": ver or "?", "cgi": CGIT_CGI}
            self.results["cgit_setup"] = dict(self.cgit)

    def build_shim(self, d: Path) -> Path:
        cc = shutil.which("cc") or shutil.which("gcc")
        if not cc:
            raise BenchError("a C compiler (cc) is needed to build bench/cgi_rusage.c: apt-get install -y gcc")
        so = d / "cgi_rusage.so"
        run([cc, "-O2", "-shared", "-fPIC", "-Wall", "-o", so, ROOT / "bench" / "cgi_rusage.c"])
        return so

    # ---------------------------------------------------------------- measuring

    def servers(self):
        return [self.kura, self.ref]

    def measure(self, srv: Server, fn) -> dict:
        srv.quiesce()
        cpu0 = srv.cpu()
        smp = Sampler(srv.roots, srv.idle)
        smp.start()
        t0 = time.perf_counter()
        extra = fn()
        wall = time.perf_counter() - t0
        srv.quiesce()
        smp.stop()
        cpu1 = srv.cpu()
        r = {
            "wall": wall,
            "cpu": (cpu1[0] + cpu1[1]) - (cpu0[0] + cpu0[1]),
            "cpu_server": cpu1[0] - cpu0[0],
            "cpu_children": cpu1[1] - cpu0[1],
            "peak_rss": smp.peak_total / MiB,
            "peak_rss_main": smp.peak_roots / MiB,
            "peak_rss_children": smp.peak_children / MiB,
        }
        if extra:
            r.update(extra)
        return r

    def alternate(self, runs: int, fn_for, warmup=True, per=1) -> dict:
        """fn_for(server, i) -> callable doing one run (i = -1: the unrecorded warm-up).
        `per`: operations in one run; wall and CPU are then reported per operation (CPU times
        come in 10 ms ticks from /proc, so short operations are measured in batches).
        Returns {"kura": [...], "reference": [...]}."""
        res = {"kura": [], "reference": []}
        if warmup:
            for srv in self.servers():
                self.measure(srv, fn_for(srv, -1))
        for i in range(runs):
            for srv in self.servers():
                m = self.measure(srv, fn_for(srv, i))
                for k in ("wall", "cpu", "cpu_server", "cpu_children"):
                    m[k] /= per
                res[srv.name].append(m)
        return res

    def batch(self, fns):
        def go():
            for f in fns:
                f()
        return go

    def add(self, fid, group, repo, label, unit, samples, metric, better="lower", proto=None, scale=1.0):
        k = [s[metric] * scale for s in samples["kura"]]
        r = [s[metric] * scale for s in samples["reference"]]
        ks, rs = summary(k), summary(r)
        pair = [a / b for a, b in zip(k, r) if b > 0]
        fig = {
            "id": fid,
            "group": group,
            "repo": repo,
            "proto": proto,
            "metric": label,
            "unit": unit,
            "better": better,
            "kura": ks,
            "reference": rs,
            "ratio": ks["median"] / rs["median"] if rs["median"] > 0 else None,
            "pair_ratio": summary(pair) if pair else None,
            "samples": {"kura": k, "reference": r},
        }
        tgt = TARGETS.get(fid)
        if tgt:
            fig["target"] = tgt[1]
            fig["meets_target"] = fig["ratio"] is not None and fig["ratio"] <= tgt[1]
        self.results["figures"].append(fig)
        rt = f"{fig['ratio']:.2f}x" if fig["ratio"] is not None else "n/a"
        log(f"  {group} {repo} {proto or ''} {label}: kura {ks['median']:.3f} {unit}, "
            f"reference {rs['median']:.3f} {unit}, ratio {rt}")

    def git_cmd(self, argv, srv: Server | None = None, cwd=None):
        def go():
            r = subprocess.run(argv, env=self.client_env(), cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
            if r.returncode != 0:
                where = srv.name if srv else ""
                raise BenchError(f"{where}: {' '.join(map(str, argv))} failed: {r.stderr.decode(errors='replace')[-1500:]}")
        return go

    # figure 1
    def fig_clone(self, repo: Repo):
        tmp = self.work / "clones"
        for proto in ("2", "0"):
            def fn_for(srv, i, proto=proto):
                dest = tmp / f"{srv.name}.git"  # the previous clone is removed before the timing starts
                shutil.rmtree(dest, ignore_errors=True)
                return self.git_cmd([self.git, "-c", f"protocol.version={proto}", "clone", "--bare", "--quiet",
                                     srv.url(repo.key), str(dest)], srv)
            log(f"full clone v{proto} of {repo.key} ({self.mode['clone_runs']} runs each)")
            res = self.alternate(self.mode["clone_runs"], fn_for)
            shutil.rmtree(tmp, ignore_errors=True)
            self.add("clone.wall", "full clone", repo.key, "client wall time", "s", res, "wall", proto=f"v{proto}")
            self.add("clone.server_cpu", "full clone", repo.key, "server CPU", "s", res, "cpu", proto=f"v{proto}")
            self.add("clone.server_cpu_own", "full clone", repo.key, "… of which the server process(es)", "s", res,
                     "cpu_server", proto=f"v{proto}")
            self.add("clone.server_cpu_git", "full clone", repo.key, "… of which git (children)", "s", res,
                     "cpu_children", proto=f"v{proto}")
            self.add("clone.server_peak_rss", "full clone", repo.key, "server peak RSS (tree)", "MiB", res,
                     "peak_rss", proto=f"v{proto}")

    # figure 2
    def upload_request(self, repo: Repo) -> bytes:
        refs = run([self.git, "ls-remote", self.kura.url(repo.key)], env=self.client_env()).stdout.decode()
        wants = []
        for line in refs.splitlines():
            oid, name = line.split("\t")
            if name.endswith("^{}") or not (name == "HEAD" or name.startswith(("refs/heads/", "refs/tags/"))):
                continue
            if oid not in wants:
                wants.append(oid)
        ver = run([self.git, "version"]).stdout.decode().split()[-1]
        body = pkt(b"command=fetch\n") + pkt(f"agent=git/{ver}\n".encode()) + pkt(b"object-format=sha1\n") + b"0001"
        # what `git clone` (2.47) sends, checked with GIT_TRACE_PACKET
        for cap in (b"thin-pack\n", b"no-progress\n", b"ofs-delta\n"):
            body += pkt(cap)
        for w in wants:
            body += pkt(f"want {w}\n".encode())
        body += pkt(b"done\n") + b"0000"
        return body

    @staticmethod
    def post_pack(base_url: str, body: bytes) -> int:
        u = urllib.parse.urlsplit(base_url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
        conn.request("POST", u.path + "/git-upload-pack", body=body, headers={
            "Content-Type": "application/x-git-upload-pack-request",
            "Accept": "application/x-git-upload-pack-result",
            "Git-Protocol": "version=2",
            "User-Agent": "git/kura-bench",
        })
        resp = conn.getresponse()
        if resp.status != 200:
            raise BenchError(f"POST {base_url}/git-upload-pack: HTTP {resp.status} {resp.read(500)!r}")
        n = 0
        first = resp.read(13)
        if not first.startswith(b"000dpackfile\n"):
            raise BenchError(f"POST {base_url}/git-upload-pack: unexpected answer {first!r}")
        n = len(first)
        while True:
            chunk = resp.read(1 << 20)
            if not chunk:
                break
            n += len(chunk)
        conn.close()
        return n

    def fig_throughput(self, repo: Repo):
        body = self.upload_request(repo)
        (self.work / f"upload-pack-request-{repo.key}.bin").write_bytes(body)
        sizes = {srv.name: self.post_pack(srv.url(repo.key), body) for srv in self.servers()}
        log(f"server throughput on {repo.key}: request {len(body)} bytes, response "
            f"kura {sizes['kura']} / reference {sizes['reference']} bytes")
        repo.info["replayed_response_bytes"] = sizes
        for n, reqs in self.mode["tput_levels"].items():
            def fn_for(srv, i, n=n, reqs=reqs):
                url = srv.url(repo.key)

                def go():
                    counter = iter(range(reqs))
                    lock = threading.Lock()
                    total = [0, 0]
                    errors = []

                    def worker():
                        while True:
                            with lock:
                                if next(counter, None) is None:
                                    return
                            try:
                                b = self.post_pack(url, body)
                            except Exception as e:  # noqa: BLE001
                                errors.append(e)
                                return
                            with lock:
                                total[0] += 1
                                total[1] += b
                    ts = [threading.Thread(target=worker) for _ in range(n)]
                    for t in ts:
                        t.start()
                    for t in ts:
                        t.join()
                    if errors:
                        raise BenchError(f"{srv.name}: {errors[0]}")
                    return {"packs": total[0], "bytes": total[1]}
                return go
            log(f"replaying the clone request on {repo.key}: {n} concurrent clients, {reqs} requests per run")
            res = self.alternate(self.mode["tput_runs"], fn_for, warmup=(n == 1))
            for side in res.values():
                for s in side:
                    s["packs_per_min"] = s["packs"] / s["wall"] * 60
                    s["mb_per_s"] = s["bytes"] / s["wall"] / 1e6
                    s["cpu_per_pack"] = s["cpu"] / s["packs"]
                    s["cpu_server_per_pack"] = s["cpu_server"] / s["packs"]
            p = f"N={n}"
            self.add("tput.packs_per_min", "server throughput", repo.key, "packs/min", "packs/min", res,
                     "packs_per_min", better="higher", proto=p)
            self.add("tput.mb_per_s", "server throughput", repo.key, "MB/s", "MB/s", res, "mb_per_s",
                     better="higher", proto=p)
            self.add("tput.cpu_per_pack", "server throughput", repo.key, "server CPU per pack", "s", res,
                     "cpu_per_pack", proto=p)
            self.add("tput.cpu_server_per_pack", "server throughput", repo.key, "… of which the server process(es)",
                     "s", res, "cpu_server_per_pack", proto=p)
            self.add("tput.peak_rss", "server throughput", repo.key, "server peak RSS (tree)", "MiB", res,
                     "peak_rss", proto=p)
            if n == 16:
                self.results["kura_rss_16"] = {
                    "repo": repo.key,
                    "kura_process_peak_mib": summary([s["peak_rss_main"] for s in res["kura"]]),
                    "kura_children_peak_mib": summary([s["peak_rss_children"] for s in res["kura"]]),
                    "reference_main_peak_mib": summary([s["peak_rss_main"] for s in res["reference"]]),
                    "reference_children_peak_mib": summary([s["peak_rss_children"] for s in res["reference"]]),
                }

    # figure 3
    def fig_refs(self, repo: Repo):
        client = self.work / "clients" / f"{repo.key}.git"
        if not client.exists():
            run([self.git, "clone", "--bare", "--quiet", repo.source, client], env=self.client_env())
        runs, per = self.mode["small_runs"], self.mode["small_batch"]
        for proto in ("2", "0"):
            def ls_for(srv, i, proto=proto):
                return self.batch([self.git_cmd([self.git, "-c", f"protocol.version={proto}", "ls-remote",
                                                 srv.url(repo.key)], srv)] * per)

            def fetch_for(srv, i, proto=proto):
                return self.batch([self.git_cmd(
                    [self.git, "-C", str(client), "-c", f"protocol.version={proto}", "-c", "maintenance.auto=false",
                     "-c", "gc.auto=0", "fetch", "--quiet", srv.url(repo.key), "+refs/heads/*:refs/heads/*",
                     "+refs/tags/*:refs/tags/*"], srv)] * per)
            for name, fn_for in (("ls-remote", ls_for), ("noop-fetch", fetch_for)):
                log(f"{name} v{proto} on {repo.key} ({runs} runs of {per} each)")
                res = self.alternate(runs, fn_for, per=per)
                self.add(f"refs.{name}", name, repo.key, "client wall time", "ms", res, "wall", proto=f"v{proto}",
                         scale=1000)
                self.add(f"refs.{name}.cpu", name, repo.key, "server CPU", "ms", res, "cpu", proto=f"v{proto}",
                         scale=1000)

    # figure 4
    def fig_push(self, repo: Repo):
        client = self.work / "clients" / "push-client.git"
        if not client.exists():
            run([self.git, "clone", "--bare", "--quiet", repo.source, client], env=self.client_env())
        runs, per = self.mode["push_runs"], self.mode["push_batch"]
        sizes = (1, 100)
        # every push gets commits neither server has: made up front, outside the timing
        rng = random.Random(7)
        main = run([self.git, "-C", client, "rev-parse", "refs/heads/main"]).stdout.decode().strip()
        files = run([self.git, "-C", client, "ls-tree", "-r", "--name-only", "main"]).stdout.decode().split()
        files = [f for f in files if not f.endswith(".bin")]
        stream = []
        t = 1_700_000_000
        for n in sizes:
            for i in range((runs + 1) * per):
                ref = f"refs/heads/bench/push{n}-{i}"
                stream.append(f"reset {ref}\nfrom {main}\n\n")
                for j in range(n):
                    t += 60
                    path = rng.choice(files)
                    content = "\n".join(
                        " ".join(rng.choice(["fn", "let", "value", "push", "ref", "Ok", "err"]) for _ in range(8))
                        for _ in range(rng.randint(20, 80))
                    ) + "\n"
                    msg = f"bench push {n}-{i} commit {j}\n"
                    stream.append(
                        f"commit {ref}\ncommitter Bench <bench@example.com> {t} +0000\n"
                        f"data {len(msg)}\n{msg}M 100644 inline {path}\ndata {len(content.encode())}\n{content}\n"
                    )
        run([self.git, "-C", client, "fast-import", "--quiet"], input="".join(stream).encode(), env=self.client_env())
        for n in sizes:
            def fn_for(srv, i, n=n):
                extra = ["-c", f"http.extraHeader={srv.push_header}"] if srv.push_header else []
                refs = [f"refs/heads/bench/push{n}-{(i + 1) * per + j}" for j in range(per)]
                return self.batch([self.git_cmd([self.git, "-C", str(client), *extra, "push", "--quiet",
                                                 "--no-verify", srv.url(repo.key), f"{ref}:{ref}"], srv)
                                   for ref in refs])
            log(f"push of a new branch with {n} commit(s) ({runs} runs of {per} pushes each)")
            res = self.alternate(runs, fn_for, per=per)
            label = f"{n} commit" + ("s" if n > 1 else "")
            self.add("push", "push", repo.key, "client wall time", "ms", res, "wall", proto=label, scale=1000)
            self.add("push.cpu", "push", repo.key, "server CPU", "ms", res, "cpu", proto=label, scale=1000)

    # figure 9
    def fig_cache(self, repo: Repo):
        """Clones with the pack cache on: the first one after a restart (empty cache: the
        pack is made and written to the cache while it is streamed) and repeated identical
        ones (served from the cache), against the same clone from the reference."""
        tmp = self.work / "clones"
        on = {"KURA_PACK_CACHE_SIZE": "8GiB"}

        def clone(srv, tag):
            dest = tmp / f"{srv.name}-{tag}.git"
            shutil.rmtree(dest, ignore_errors=True)
            return self.git_cmd([self.git, "-c", "protocol.version=2", "clone", "--bare", "--quiet",
                                 srv.url(repo.key), str(dest)], srv)

        def first_for(srv, i):
            if srv is self.kura:
                self.start_kura(**on)  # a new process: an empty cache
            return clone(srv, "first")

        runs = max(3, self.mode["clone_runs"] // 2)
        log(f"first clone with the pack cache on, v2, of {repo.key} ({runs} runs each, Kura restarted before each)")
        res = self.alternate(runs, first_for, warmup=False)
        self.add("cache.first.wall", "cached clone", repo.key, "first clone: client wall time", "s", res, "wall",
                 proto="v2, cache empty")
        self.add("cache.first.cpu", "cached clone", repo.key, "first clone: server CPU", "s", res, "cpu",
                 proto="v2, cache empty")
        log(f"repeated identical clones, v2, of {repo.key} ({self.mode['clone_runs']} runs each, from the cache)")
        self.start_kura(**on)
        res = self.alternate(self.mode["clone_runs"], lambda srv, i: clone(srv, "again"))
        self.add("cache.hit.wall", "cached clone", repo.key, "repeated clone: client wall time", "s", res, "wall",
                 proto="v2, from the cache")
        self.add("cache.hit.cpu", "cached clone", repo.key, "repeated clone: server CPU", "s", res, "cpu",
                 proto="v2, from the cache")
        self.add("cache.hit.rss", "cached clone", repo.key, "repeated clone: server peak RSS (tree)", "MiB", res,
                 "peak_rss", proto="v2, from the cache")
        shutil.rmtree(tmp, ignore_errors=True)
        self.start_kura(KURA_PACK_CACHE_SIZE="0")

    # figure 10
    def fig_stages(self, repo: Repo):
        """Where the time of one `GET info/refs` goes: Kura's own debug lines per stage
        (`request stage`), the response as the client sees it, the same for the reference, and
        git's advertisement run directly with Kura's flags."""
        runs = self.mode["small_runs"] * 3
        self.start_kura(KURA_LOG="info,kura_server=debug")
        out = {}
        for proto in ("2", "0"):
            hdr = {"Git-Protocol": "version=2"} if proto == "2" else {}
            samples = {"kura": [], "reference": []}
            ids = []
            for i in range(-3, runs):
                for srv in self.servers():
                    u = urllib.parse.urlsplit(srv.url(repo.key))
                    rid = f"bench-stages-{proto}-{i}-{secrets.token_hex(4)}"
                    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
                    t0 = time.perf_counter()
                    conn.request("GET", u.path + "/info/refs?service=git-upload-pack",
                                 headers={**hdr, "x-request-id": rid})
                    resp = conn.getresponse()
                    t_head = time.perf_counter() - t0
                    body = resp.read()
                    t_end = time.perf_counter() - t0
                    conn.close()
                    if resp.status != 200 or not body:
                        raise BenchError(f"{srv.name}: GET info/refs answered {resp.status}")
                    if i >= 0:
                        samples[srv.name].append({"head": t_head * 1000, "end": t_end * 1000})
                        if srv is self.kura:
                            ids.append(rid)
            time.sleep(0.5)
            stages = self.stage_lines(ids)
            direct = []
            env = {"PATH": self.path, "HOME": str(self.work / "kura-home"), "GIT_CONFIG_NOSYSTEM": "1",
                   "GIT_CONFIG_GLOBAL": "/dev/null", "LC_ALL": "C", **({"GIT_PROTOCOL": "version=2"} if proto == "2" else {})}
            for _ in range(runs):
                t0 = time.perf_counter()
                subprocess.run([self.git, "-c", "uploadpack.allowFilter=true", "-c", "uploadpack.allowAnySHA1InWant=false",
                                "upload-pack", "--stateless-rpc", "--advertise-refs", str(repo.kura_dir)],
                               env=env, stdout=subprocess.DEVNULL, check=True)
                direct.append((time.perf_counter() - t0) * 1000)
            med = lambda xs: statistics.median(xs) if xs else None  # noqa: E731
            out[f"v{proto}"] = {
                "repo": repo.key,
                "runs": runs,
                "kura_head_ms": med([x["head"] for x in samples["kura"]]),
                "kura_end_ms": med([x["end"] for x in samples["kura"]]),
                "reference_head_ms": med([x["head"] for x in samples["reference"]]),
                "reference_end_ms": med([x["end"] for x in samples["reference"]]),
                "direct_git_ms": med(direct),
                "stages_ms": {k: med(v) for k, v in stages.items()},
            }
            log(f"  info/refs v{proto}: kura {out[f'v{proto}']['kura_end_ms']:.2f} ms, reference "
                f"{out[f'v{proto}']['reference_end_ms']:.2f} ms, git alone {out[f'v{proto}']['direct_git_ms']:.2f} ms; "
                + ", ".join(f"{k} {v:.2f}" for k, v in out[f"v{proto}"]["stages_ms"].items() if v is not None))
        self.results["stages"] = out
        self.start_kura(KURA_LOG="info")

    def stage_lines(self, ids: list[str]) -> dict:
        """{stage: [ms, ...]} from Kura's JSON log, for the requests with these ids."""
        want = set(ids)
        found: dict = {}
        with open(self.work / "kura.log", errors="replace") as f:
            for line in f:
                if "request stage" not in line:
                    continue
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                spans = rec.get("spans") or []
                span = rec.get("span") or {}
                rid = span.get("request_id") or next((s.get("request_id") for s in spans if "request_id" in s), None)
                fields = rec.get("fields", {})
                if rid in want and "stage" in fields:
                    found.setdefault(fields["stage"], []).append(int(fields.get("us", 0)) / 1000)
        return found

    # figure 8
    def fig_memory(self):
        """Kura's own RSS while a 200 MB push goes through it, and a minute after."""
        src = self.work / "memory-src"
        shutil.rmtree(src, ignore_errors=True)
        env = self.client_env()
        run([self.git, "init", "-q", "-b", "main", str(src)], env=env)
        for k, v in (("core.compression", "0"), ("core.bigFileThreshold", "1m"), ("user.name", "Bench"),
                     ("user.email", "bench@example.com")):
            run([self.git, "-C", src, "config", k, v], env=env)
        per = MEMORY_PUSH_MB // 4
        for i in range(4):
            with open(src / f"blob{i}.bin", "wb") as f:
                f.write(os.urandom(per * MiB))
        run([self.git, "-C", src, "add", "-A"], env=env)
        run([self.git, "-C", src, "commit", "-q", "-m", "random data"], env=env)
        self.start_kura()
        time.sleep(2)
        before = rss_of(self.kura.roots) / MiB
        smp = Sampler(self.kura.roots, self.kura.idle)
        smp.start()
        t0 = time.perf_counter()
        url = self.kura.url("memory")
        run([self.git, "-C", src, "-c", f"http.extraHeader={self.kura.push_header}", "push", "--quiet", url,
             "main:main"], env=env)
        wall = time.perf_counter() - t0
        smp.stop()
        peak = smp.peak_roots / MiB
        log(f"  {MEMORY_PUSH_MB} MB push: {wall:.1f} s, Kura's own peak RSS {peak:.1f} MiB (before: {before:.1f})")
        time.sleep(MEMORY_AFTER_S)
        after = rss_of(self.kura.roots) / MiB
        log(f"  {MEMORY_AFTER_S} s after: {after:.1f} MiB")
        self.results["memory"] = {"push_mb": MEMORY_PUSH_MB, "push_s": wall, "before_mib": before,
                                  "peak_mib": peak, "after_mib": after, "after_s": MEMORY_AFTER_S}
        shutil.rmtree(src, ignore_errors=True)

    # figure 5
    def idle_rss(self, when: str):
        time.sleep(3)
        self.kura.quiesce()
        vals = []
        for _ in range(10):
            vals.append(rss_of(self.kura.roots) / MiB)
            time.sleep(0.1)
        ref_vals = rss_of(self.ref.roots + list(self.ref.idle)) / MiB if self.ref else 0.0
        split = rss_split(self.kura.roots[0])
        self.results.setdefault("idle_rss", {})[when] = {
            "kura_mib": statistics.median(vals),
            "kura_anon_mib": split["anon_mib"],
            "kura_file_mib": split["file_mib"],
            "reference_tree_mib": ref_vals,
        }
        log(f"idle RSS {when}: kura {statistics.median(vals):.1f} MiB (anonymous {split['anon_mib']:.1f}, "
            f"file-backed {split['file_mib']:.1f})" + (f", reference tree {ref_vals:.1f} MiB" if self.ref else ""))

    # figure 6
    def pages_subjects(self, repo: Repo) -> dict:
        """What the pages show, chosen from the repository's history (cached next to it)."""
        cache = repo.source.with_name(repo.source.name.removesuffix(".git") + "-subjects.json")
        if cache.exists() and "versions" not in json.loads(cache.read_text()):
            cache.unlink()
        if cache.exists():
            return json.loads(cache.read_text())
        log(f"choosing the pages to measure in {repo.source.name}")
        env = self.client_env()

        def g(*a, stdin: bytes | None = None) -> str:
            return run([self.git, "-C", repo.source, *a], env=env, input=stdin).stdout.decode()

        head = g("rev-parse", "refs/heads/main").strip()
        # the commits that each made a new version of PAGES_FILE, oldest first
        versions = g("rev-list", "--reverse", f"-{PAGES_FILE_VERSIONS}", "refs/heads/main").split()
        # the text file touched by most commits: its log has to walk the whole history
        counts: dict[str, int] = {}
        for name in g("log", "--format=", "--name-only", "--no-renames", "refs/heads/main").splitlines():
            if name and not name.endswith(".bin") and name != PAGES_FILE:
                counts[name] = counts.get(name, 0) + 1
        path_file = min(counts, key=lambda n: (-counts[n], n))
        leaf = path_file.rsplit("/", 1)[0]
        module = "/".join(path_file.split("/")[:2])
        # commits from the middle of the (first-parent) history with the largest text diffs
        fp = g("rev-list", "--first-parent", "--no-merges", "refs/heads/main").split()
        window = fp[int(len(fp) * 0.4): int(len(fp) * 0.6)]
        pos = {c: i for i, c in enumerate(fp)}
        stats: dict[str, dict] = {}
        cur = None
        for line in g("diff-tree", "--stdin", "--numstat", "--no-renames", "-r",
                      stdin=("\n".join(window) + "\n").encode()).splitlines():
            parts = line.split("\t")
            if len(parts) == 1 and re.fullmatch(r"[0-9a-f]{40}", line):
                cur = stats.setdefault(line, {"sha": line, "files": 0, "added": 0, "removed": 0,
                                              "binary": False, "pos": pos[line]})
            elif len(parts) == 3 and cur is not None:
                cur["files"] += 1
                if parts[0] == "-":
                    cur["binary"] = True
                else:
                    cur["added"] += int(parts[0])
                    cur["removed"] += int(parts[1])
        cands = sorted((c for c in stats.values() if not c["binary"] and c["files"]),
                       key=lambda c: (-(c["added"] + c["removed"]), c["pos"]))[:200]
        for c in cands:
            c["paths"] = g("diff-tree", "--no-commit-id", "--name-only", "--no-renames", "-r", c["sha"]).split()
        subj = {
            "head": head,
            "head_subject": g("log", "-1", "--format=%s", head).strip(),
            "first_parent_commits": len(fp),
            "blob": PAGES_FILE,
            "versions": versions,
            "blob_expect": f"{PAGES_RARE_WORD}_",
            "tree_dir": leaf,
            "path_file": path_file,
            "path_file_commits": counts[path_file],
            "path_file_shas": g("log", "--format=%H", "--full-history", "refs/heads/main", "--", path_file).split(),
            "path_dir": module,
            "path_dir_shas": g("log", "--format=%H", "--full-history", "-n", "200", "refs/heads/main", "--",
                               module).split(),
            "diff_candidates": cands,
        }
        cache.write_text(json.dumps(subj, indent=1))
        return subj

    def fig_pages(self, repo: Repo):
        """Kura's browser pages against cgit on the same repository files, anonymous, one
        persistent connection per server, alternating requests, timed at the client."""
        if self.cgit is None:
            raise BenchError("cgit is not set up")
        subj = self.pages_subjects(repo)
        runs, warm = self.mode["page_runs"], self.mode["page_warmup"]
        n = runs + warm
        k, c = f"/bench/{repo.key}", f"/{repo.key}"
        q = urllib.parse.quote
        # first fetch of a commit page: a different commit for every request (Kura may keep
        # pages addressed by commit id), the same one on both servers in each round
        cands = subj["diff_candidates"]
        diffs = sorted((cands * (n // len(cands) + 1))[:n], key=lambda x: x["pos"])
        rep = sorted(diffs[warm:], key=lambda x: x["added"] + x["removed"])[(runs - 1) // 2]
        head = subj["head"]
        # first fetch of a folder or a file: a different commit (and blob) in every round
        vs = subj["versions"]
        if n > len(vs):
            self.results["notes"].append(f"Pages: {n} requests per page but only {len(vs)} versions of "
                                         f"{PAGES_FILE}: some first-fetch tree and file requests repeat a commit.")
        vs = [vs[i % len(vs)] for i in range(n)]
        tree_dir, leaf_name = subj["tree_dir"], subj["path_file"].rsplit("/", 1)[1] + "</a>"
        kura_base = f"http://127.0.0.1:{self.kura_port}"
        pages = [
            # (figure id, variant, Kura URL(s), cgit URL(s), expected text (Kura, cgit)); a list of
            # URLs: one per request (warm-up ones first), the expected texts then a list too
            ("pages.tree", "root, a new commit per round", [f"{k}/tree/{v}" for v in vs], [f"{c}/tree/?id={v}" for v in vs],
             ([">README.md</a>"] * n, [">README.md</a>"] * n)),
            ("pages.tree", f"folder {tree_dir}, a new commit per round", [f"{k}/tree/{v}/{q(tree_dir)}" for v in vs],
             [f"{c}/tree/{q(tree_dir)}?id={v}" for v in vs], ([leaf_name] * n, [leaf_name] * n)),
            ("pages.blob", f"{PAGES_FILE}, {PAGES_FILE_LINES} lines, a new version per round",
             [f"{k}/blob/{v}/{q(PAGES_FILE)}" for v in vs],
             [f"{c}/tree/{q(PAGES_FILE)}?id={v}" for v in vs], ([subj["blob_expect"]] * n, [subj["blob_expect"]] * n)),
            ("pages.log", "main, by branch name", f"{k}/commits/main", f"{c}/log/?h=main", (head, head)),
            ("pages.pathlog", f"file {subj['path_file']} ({subj['path_file_commits']} commits)",
             f"{k}/commits/main/{q(subj['path_file'])}", f"{c}/log/{q(subj['path_file'])}?h=main",
             (subj["path_file_shas"], subj["path_file_shas"])),
            ("pages.pathlog", f"folder {subj['path_dir']}", f"{k}/commits/main/{q(subj['path_dir'])}",
             f"{c}/log/{q(subj['path_dir'])}?h=main", (subj["path_dir_shas"], subj["path_dir_shas"])),
            ("pages.commit", f"a new commit per round ({n} from mid-history), {min(d['files'] for d in diffs)}–"
             f"{max(d['files'] for d in diffs)} files, {min(d['added'] + d['removed'] for d in diffs)}–"
             f"{max(d['added'] + d['removed'] for d in diffs)} changed lines",
             [f"{k}/commit/{d['sha']}" for d in diffs], [f"{c}/commit/?id={d['sha']}" for d in diffs],
             ([d["sha"] for d in diffs], [d["sha"] for d in diffs])),
            ("pages.search", f"rare word ({PAGES_RARE_WORD}: every file read)",
             f"{k}/search?q={PAGES_RARE_WORD}&ref=main", None, (PAGES_FILE, None)),
            ("pages.search", f"common word ({PAGES_COMMON_WORD}: stops at 200 matches)",
             f"{k}/search?q={PAGES_COMMON_WORD}&ref=main", None, ("<mark>", None)),
            ("pages.repeat", "tree/SHA (root at main's commit)", f"{k}/tree/{head}", f"{c}/tree/?id={head}",
             (">README.md</a>", ">README.md</a>")),
            ("pages.repeat", f"commit/SHA ({rep['files']} files, {rep['added'] + rep['removed']} changed lines)",
             f"{k}/commit/{rep['sha']}", f"{c}/commit/?id={rep['sha']}", (rep["paths"][0], rep["paths"][0])),
        ]
        info = {"repo": repo.key, "subjects": {kk: v for kk, v in subj.items() if not kk.endswith("_shas")
                                               and kk != "diff_candidates"},
                "diff_commits": [{kk: d[kk] for kk in ("sha", "files", "added", "removed")} for d in diffs],
                "repeat_commit": rep["sha"], "runs": runs, "warmup": warm, "pages": []}
        info["subjects"]["diff_candidates_in_window"] = len(cands)
        self.results["pages"] = info
        kc, cc = PageClient(kura_base), PageClient(self.cgit["base"])

        def check(client, name, url, expect) -> bytes:
            st, body, _, hdr = client.get(url)
            text = body.decode(errors="replace")
            if st != 200:
                raise BenchError(f"{name} {url}: HTTP {st}: {text[:300]!r}")
            if "text/html" not in hdr.get("content-type", ""):
                raise BenchError(f"{name} {url}: content type {hdr.get('content-type')!r}, not HTML")
            wants = expect if isinstance(expect, list) else [expect]
            if not any(w in text for w in wants):
                raise BenchError(f"{name} {url}: the page does not contain {wants[0]!r}"
                                 + (f" (nor any of {len(wants) - 1} others)" if len(wants) > 1 else ""))
            return body

        # what each page shows, checked once on both servers before anything is timed
        log(f"pages: checking that Kura and cgit ({self.cgit['base']}) serve every page")
        for fid, variant, ku, cu, (ke, ce) in pages:
            for i in range(1):  # of a list of commits only the first, a warm-up one: the rest stay unseen
                kb = check(kc, "kura", ku[i] if isinstance(ku, list) else ku,
                           ke[i] if isinstance(ku, list) else ke)
                if cu is not None:
                    check(cc, "cgit", cu[i] if isinstance(cu, list) else cu,
                          ce[i] if isinstance(cu, list) else ce)
                if i == 0:  # kept for a look: bench/out/run/pages/
                    samples = self.work / "pages"
                    samples.mkdir(exist_ok=True)
                    slug = re.sub(r"[^a-z0-9]+", "-", f"{fid} {variant}".lower()).strip("-")[:60]
                    (samples / f"{slug}.kura.html").write_bytes(kb)
                    if cu is not None:
                        (samples / f"{slug}.cgit.html").write_bytes(
                            cc.get(cu[0] if isinstance(cu, list) else cu)[1])
                if fid == "pages.tree" and i == 0:
                    text = kb.decode(errors="replace")
                    rows = text.count('<td class="last-commit">')
                    with_last = text.count('<td class="last-commit"><a ')
                    info.setdefault("tree_last_commits", {})[variant.split(",")[0]] = f"{with_last}/{rows}"
                    if with_last < rows:
                        msg = (f"Kura's tree page `{ku}` showed a last commit for only {with_last} of {rows} "
                               "entries (its walk hit the time or commit limit).")
                        log("  warning: " + msg)
                        self.results["notes"].append(msg)
                if fid == "pages.blob":
                    code = "".join(re.findall(r"<pre>(.*?)</pre>", kb.decode(errors="replace"), re.S))
                    info["blob_highlight_spans"] = code.count("<span")
                    if not info["blob_highlight_spans"]:
                        msg = f"Kura's file page `{ku[0]}` was not highlighted (no <span> in its lines)."
                        log("  warning: " + msg)
                        self.results["notes"].append(msg)

        log(f"pages: {len(pages)} pages, {runs} requests each per server (alternating, after {warm} "
            "warm-up requests), one persistent connection per server")
        smp = Sampler(self.kura.roots, self.kura.idle)
        smp.start()
        try:
            for fid, variant, ku, cu, _ in pages:
                res = {"kura": [], "cgit": []}
                size = {"kura": [], "cgit": []}
                for i in range(n):
                    for side, client, urls in (("kura", kc, ku), ("cgit", cc, cu)):
                        if urls is None:
                            continue
                        url = urls[i] if isinstance(urls, list) else urls
                        st, body, took, _ = client.get(url)
                        if st != 200:
                            raise BenchError(f"{side} {url}: HTTP {st}")
                        if i >= warm:
                            res[side].append(took * 1000)
                            size[side].append(len(body))
                self.add_page(fid, variant, repo.key, ku, cu, res, size)
                # Kura's RSS right after each page's requests: which page makes it grow
                split = rss_split(self.kura.roots[0])
                info.setdefault("kura_rss_after_mib", []).append(
                    [f"{fid} {variant}", round(rss_of(self.kura.roots) / MiB, 1), round(split["anon_mib"], 1),
                     round(split["file_mib"], 1)])
        finally:
            smp.stop()
            kc.close()
            cc.close()
        info["connections"] = {"kura": kc.connects, "cgit": cc.connects}
        self.results["pages_rss"] = {"kura_peak_mib": smp.peak_roots / MiB}

    def add_page(self, fid, variant, repo, ku, cu, res, size):
        def summ(xs):
            return dict(summary(xs), p90=p90(xs)) if xs else None
        k, r = res["kura"], res["cgit"]
        ks, rs = summ(k), summ(r)
        fig = {
            "id": fid,
            "group": "pages",
            "repo": repo,
            "proto": variant,
            "metric": PAGE_TARGETS[fid][0],
            "unit": "ms",
            "better": "lower",
            "reference_name": "cgit",
            "kura": ks,
            "reference": rs,
            "ratio": ks["median"] / rs["median"] if rs and rs["median"] > 0 else None,
            "pair_ratio": summary([a / b for a, b in zip(k, r) if b > 0]) if r else None,
            "urls": {"kura": ku if isinstance(ku, str) else f"{ku[0]} ... ({len(ku)} commits)",
                     "cgit": cu if cu is None or isinstance(cu, str) else f"{cu[0]} ... ({len(cu)} commits)"},
            "bytes": {"kura": statistics.median(size["kura"]),
                      "cgit": statistics.median(size["cgit"]) if size["cgit"] else None},
            "target_ms": PAGE_TARGETS[fid][1],
            "meets_target": ks["median"] <= PAGE_TARGETS[fid][1],
            "samples": {"kura": k, "reference": r},
        }
        self.results["figures"].append(fig)
        rt = f", cgit {rs['median']:.2f} ms (p90 {rs['p90']:.2f}), ratio {fig['ratio']:.2f}x" if rs else ""
        log(f"  {fid} {variant}: kura {ks['median']:.2f} ms (p90 {ks['p90']:.2f}){rt}; target "
            f"{fig['target_ms']:g} ms {'met' if fig['meets_target'] else 'MISSED'}")

    # figure 7
    def fig_triggers(self):
        """Push-to-webhook latency: a webhook trigger on an empty repository posts to a receiver
        in this process; each of `trigger_pushes` sequential pushes of one new commit is timed
        from just before `git push` starts to the arrival of the event whose `after` is that
        commit (and the next push starts only then). No peer: git http-backend has no webhooks."""
        n = self.mode["trigger_pushes"]
        full = f"bench/{TRIGGER_REPO}"
        env = self.client_env()
        self.receiver = rx = WebhookReceiver()
        try:
            self.kura_cli("repo", "create", full, "--default-branch", "main")
            added = run([self.kura_bin, "trigger", "add", full, "webhook", rx.url("/kura-bench?token=t")],
                        env=self.kura_env)
            added_msg = (added.stderr + added.stdout).decode(errors="replace").strip()
            log(f"triggers: {added_msg}")
            # the commits, made up front outside the timing: a chain on main, each changing one
            # line of a small file (commit 0 is the initial push, which creates the branch)
            client = self.work / "trigger-client"
            shutil.rmtree(client, ignore_errors=True)
            client.mkdir(parents=True)
            g = lambda *a: run([self.git, "-C", client, *a], env=env).stdout.decode().strip()  # noqa: E731
            g("init", "--quiet", "--initial-branch=main")
            g("config", "user.name", "Bench")
            g("config", "user.email", "bench@example.com")
            commits = []
            for i in range(n + 1):
                (client / "build.txt").write_text(f"build {i}\n")
                g("add", "build.txt")
                g("commit", "--quiet", "--no-verify", "-m", f"trigger bench push {i}")
                commits.append(g("rev-parse", "HEAD"))
            url = self.kura.url(TRIGGER_REPO)
            push_argv = [self.git, "-C", str(client), "-c", f"http.extraHeader={self.kura.push_header}", "push",
                         "--no-verify", url]

            def push(sha: str) -> tuple[float, float, str]:
                t0 = time.monotonic()
                r = subprocess.run(push_argv + [f"{sha}:refs/heads/main"], env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
                t1 = time.monotonic()
                err = r.stderr.decode(errors="replace")
                if r.returncode != 0:
                    raise BenchError(f"git push {url} {sha[:12]}:main failed ({r.returncode}): {err.strip()[-1500:]}")
                return t0, t1, err

            def remote_line(err: str) -> str | None:
                return next((ln.strip().removeprefix("remote:").strip() for ln in err.splitlines()
                             if "queued" in ln and "trigger" in ln), None)

            log(f"triggers: initial push of {full}, then {n} sequential pushes of one commit each "
                f"(webhook receiver {rx.url('/')})")
            t0, t1, err = push(commits[0])
            first = rx.wait_for(commits[0], t1 + 30)
            if first is None:
                raise BenchError(f"the event of the initial push to {full} ({commits[0][:12]}) did not reach "
                                 f"{rx.url('/')} within 30 s: {self.trigger_deliveries(full)}")
            initial_line = remote_line(err)
            initial_ms = (first["t"] - t0) * 1000
            latency, wall, after_return, missing, no_line = [], [], [], [], []
            line = None
            cpu0 = self.kura.cpu()
            for i, sha in enumerate(commits[1:], 1):
                t0, t1, err = push(sha)
                ln = remote_line(err)
                if ln is None:
                    no_line.append(i)
                elif line is None:
                    line = ln
                ev = rx.wait_for(sha, t1 + TRIGGER_WAIT_S)
                wall.append((t1 - t0) * 1000)
                if ev is None:
                    log(f"  push {i} ({sha[:12]}): no event within {TRIGGER_WAIT_S:g} s of the push")
                    missing.append((i, sha, t0, t1))
                    continue
                latency.append((ev["t"] - t0) * 1000)
                after_return.append((ev["t"] - t1) * 1000)
            cpu1 = self.kura.cpu()
            late = []
            if missing:  # one last chance for stragglers
                deadline = time.monotonic() + TRIGGER_WAIT_S
                for i, sha, t0, t1 in missing:
                    ev = rx.wait_for(sha, deadline)
                    if ev is not None:
                        late.append(i)
                        latency.append((ev["t"] - t0) * 1000)
                        after_return.append((ev["t"] - t1) * 1000)
            wanted = set(commits[1:])
            with rx.cond:
                events = list(rx.events)
            got = [e for e in events if e["after"] in wanted]
            received = len(latency)  # pushes whose event arrived (each timed once)
            if received != n:
                lost = [f"push {i} ({sha[:12]})" for i, sha, _, _ in missing if i not in late]
                other = [e for e in events if e["after"] not in wanted and e["after"] != commits[0]]
                raise BenchError(
                    f"triggers: {received} of {n} push events reached the receiver; missing: {', '.join(lost)}"
                    + (f"; {len(other)} unexpected event(s), e.g. {other[0]}" if other else "")
                    + f"; {self.trigger_deliveries(full)}")
            if late:
                self.results["notes"].append(
                    f"Triggers: the events of push(es) {', '.join(map(str, late))} came more than "
                    f"{TRIGGER_WAIT_S:g} s after their push; the next push had started by then.")
            if no_line:
                self.results["notes"].append(
                    f"Triggers: {len(no_line)} of {n} pushes showed no `remote: queued ...` line "
                    f"(e.g. push {no_line[0]}).")
            kinds = sorted({str(e["event"]) for e in got})
            if kinds != ["push"]:
                self.results["notes"].append(f"Triggers: X-Kura-Event of the events was {', '.join(kinds)}, not push.")
            dups = len(got) - received
            deliveries = [e["delivery"] for e in got]
            self.results["triggers"] = {
                "repo": full,
                "pushes": n,
                "received": received,
                "duplicates": dups,
                "late": late,
                "trigger_added": added_msg,
                "receiver": rx.url("/kura-bench?token=t"),
                "remote_line": line or initial_line,
                "pushes_without_remote_line": len(no_line),
                "event_headers": {"X-Kura-Event": kinds, "X-Kura-Delivery": f"{deliveries[0]} ... {deliveries[-1]}"},
                "event_bytes": statistics.median(e["bytes"] for e in got),
                "kura_cpu_per_push_ms": ((cpu1[0] + cpu1[1]) - (cpu0[0] + cpu0[1])) / n * 1000,
                "initial_push_latency_ms": initial_ms,
            }
            self.add_trigger_fig("triggers.latency", "push to webhook received", latency, target=True)
            self.add_trigger_fig("triggers.push_wall", "git push wall time", wall)
            self.add_trigger_fig("triggers.after_push", "event after git push returned", after_return)
            f = self.results["figures"][-3]
            log(f"  triggers: {received}/{n} events received; push to webhook p50 {f['kura']['median']:.0f} ms, "
                f"p90 {f['kura']['p90']:.0f} ms, max {f['kura']['max']:.0f} ms; git push p50 "
                f"{statistics.median(wall):.0f} ms; target {TRIGGER_TARGET} {'met' if f['meets_target'] else 'MISSED'}")
        finally:
            rx.close()

    def trigger_deliveries(self, full: str) -> str:
        """What `kura trigger deliveries` says, for an error message."""
        r = run([self.kura_bin, "trigger", "deliveries", full, "--limit", "5"], check=False, env=self.kura_env)
        out = (r.stdout + r.stderr).decode(errors="replace").strip()
        return f"`kura trigger deliveries {full}` says:\n{out[-1500:]}"

    def add_trigger_fig(self, fid: str, metric: str, xs: list[float], target: bool = False):
        ks = dict(summary(xs), p90=p90(xs))
        fig = {
            "id": fid,
            "group": "triggers",
            "repo": TRIGGER_REPO,
            "proto": f"{self.mode['trigger_pushes']} pushes of 1 commit",
            "metric": metric,
            "unit": "ms",
            "better": "lower",
            "reference_name": None,  # no peer: git http-backend has no webhooks
            "kura": ks,
            "reference": None,
            "ratio": None,
            "pair_ratio": None,
            "samples": {"kura": xs, "reference": []},
        }
        if target:
            fig["target_text"] = TRIGGER_TARGET
            fig["target_ms"] = TRIGGER_TARGET_S * 1000
            fig["meets_target"] = ks["median"] <= TRIGGER_TARGET_S * 1000
        self.results["figures"].append(fig)

    # ---------------------------------------------------------------- main

    def run(self):
        t_start = time.time()
        Procs.reap_stale(self.out / "pids.json")
        self.out.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        self.install_packages()
        self.kura_bin = self.build_kura()
        self.prepare_repos()
        log("starting Kura")
        self.setup_kura()
        if self.wants_peer():
            log("starting the reference (nginx + fcgiwrap + git http-backend)")
            self.setup_reference()
            self.check_same_refs()
        self.idle_rss("after start")
        want = self.want
        read_repos = [r for r in self.repos if r.kind in ("gen", "real", "user")]
        for repo in read_repos:
            if want("clone"):
                self.fig_clone(repo)
        for repo in [r for r in read_repos if r.kind == "gen"]:
            if want("throughput"):
                self.fig_throughput(repo)
        for repo in [r for r in self.repos if r.kind in ("gen", "many", "real", "user")]:
            if want("refs"):
                self.fig_refs(repo)
        if want("push"):
            self.fig_push(next(r for r in self.repos if r.kind == "push"))
        for repo in [r for r in read_repos if r.kind in ("gen", "real", "user")]:
            if want("cache"):
                self.fig_cache(repo)
        if want("stages"):
            self.fig_stages(next(r for r in self.repos if r.kind == "real"))
        if want("memory"):
            self.fig_memory()
        if want("pages"):
            self.idle_rss("before the pages")
            self.fig_pages(next(r for r in self.repos if r.kind == "pages"))
            self.idle_rss("after the pages")
        if want("triggers"):
            self.fig_triggers()
        self.idle_rss("after the run")
        self.results["duration_s"] = time.time() - t_start

    def check_same_refs(self):
        for repo in self.repos:
            a = run([self.git, "ls-remote", self.kura.url(repo.key)], env=self.client_env()).stdout
            b = run([self.git, "ls-remote", self.ref.url(repo.key)], env=self.client_env()).stdout
            if a != b:
                raise BenchError(f"Kura and the reference do not advertise the same refs for {repo.key}")

    def meta(self) -> dict:
        def sh(*a):
            try:
                return subprocess.run(a, capture_output=True, text=True).stdout.rstrip()
            except OSError:
                return ""
        commit = sh("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD")
        dirty = bool(sh("git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "--", "crates"))
        kura_commit = commit + (" + uncommitted changes in crates/" if dirty else "")
        if self.args.kura_bin:
            kura_commit = f"binary `{self.kura_bin}` (--kura-bin; the checkout is at {kura_commit})"
        return {
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "mode": self.args.mode,
            "nproc": os.cpu_count(),
            "free_g": sh("free", "-g"),
            "kernel": platform.release(),
            "git": sh(self.git, "--version") + f" ({self.git})",
            "python": platform.python_version(),
            "kura_commit": kura_commit,
            "kura_bin": self.kura_bin,
            "maintained": self.maintained,
            "maintain_available": getattr(self, "maintain_available", False),
            "maintain_cmd": ("kura " + " ".join(self.maintain_cmd)) if getattr(self, "maintain_cmd", None) else None,
            "runs": {k: self.mode[k] for k in ("clone_runs", "small_runs", "small_batch", "push_runs", "push_batch",
                                               "tput_runs", "page_runs", "trigger_pushes")},
            "only": ",".join(g for g in GROUPS if self.want(g)) if self.only else None,
            "tput_levels": self.mode["tput_levels"],
            "repos": {r.key: {"label": r.label, "kind": r.kind, **r.info} for r in self.repos},
        }


def install_content(src: Path, dest: Path, init_git: str | None = None):
    """Gives the bare repository `dest` the objects and refs of `src` (byte-identical copies)."""
    if init_git:
        run([init_git, "init", "--bare", "--quiet", "--template=", dest],
            env={"PATH": os.environ.get("PATH", ""), "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"})
    for name in ("objects", "refs"):
        shutil.rmtree(dest / name, ignore_errors=True)
        shutil.copytree(src / name, dest / name, symlinks=True)
    for name in ("packed-refs", "HEAD"):
        if (src / name).exists():
            shutil.copy2(src / name, dest / name)
        elif (dest / name).exists() and name == "packed-refs":
            (dest / name).unlink()
    for junk in ("main-marks",):
        if (dest / junk).exists():
            (dest / junk).unlink()


def pages_file_text(version: int = 0) -> str:
    """PAGES_FILE: PAGES_FILE_LINES lines of plausible Rust (doc comments, strings, numbers,
    format strings, matches) for the highlighter, with PAGES_RARE_WORD in every function name;
    `version` changes the last line of the table only."""
    rng = random.Random(1000)
    w = lambda: rng.choice(WORDS)  # noqa: E731
    out = [
        "//! Page rendering (generated for the benchmark: the highlighted-file figure).",
        "",
        "use std::collections::HashMap;",
        "use std::fmt::Write as _;",
        "",
    ]
    tail = ["", "/// Weights of the words above.", "pub const WEIGHTS: &[(&str, u32)] = &[", "];"]
    i = 0
    while True:
        a, b, c = w(), w(), w()
        block = [
            f"/// Frobnicates the {a} {b} of a {c} (step {i}).",
            "#[inline]",
            f"pub fn {PAGES_RARE_WORD}_{a.lower()}_{i:03d}(input: &str, count: usize) -> Result<String, String> {{",
            "    let mut buffer = String::with_capacity(count * 8);",
            "    let mut seen: HashMap<&str, usize> = HashMap::new();",
            "    for (index, part) in input.split(' ').enumerate().take(count) {",
            f"        if index % {rng.randint(2, 9)} == 0 && part.len() > {rng.randint(1, 12)} {{",
            f'            let _ = write!(buffer, "{{}}:{{}} ", "{w()}", index);',
            "        } else {",
            "            *seen.entry(part).or_insert(0) += 1;",
            "            buffer.push_str(part);",
            "        }",
            "    }",
            f"    // {w()} {w()} {w()}: keep the {w()} in order",
            "    match buffer.len() {",
            f'        0 => Err(format!("empty {w()} after {{}} items", count)),',
            f"        n if n > {rng.randint(100, 9000)} => Ok(buffer[..n / 2].to_string()),",
            f"        _ => Ok(format!(\"{{buffer}} ({{}} distinct)\", seen.len() + {rng.randint(0, 99)})),",
            "    }",
            "}",
            "",
        ]
        if len(out) + len(block) + len(tail) > PAGES_FILE_LINES:
            break
        out += block
        i += 1
    rows = [f'    ("{w()}", {rng.randint(0, 65535)}),' for _ in range(PAGES_FILE_LINES - len(out) - len(tail))]
    rows[-1] = f'    ("version", {version}),'
    out += tail[:3] + rows + tail[3:]
    assert len(out) == PAGES_FILE_LINES
    return "\n".join(out) + "\n"


def make_pages_repo(src: Path, dest: Path, git: str):
    """A copy of the generated repository `src` with one more commit on main that adds
    PAGES_FILE, then PAGES_FILE_VERSIONS commits that each change its last table line
    (deterministic: fixed contents, authors and dates)."""
    dest = Path(dest).resolve()
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp, symlinks=True)
    env = gen_git_env()
    out = lambda *a: run([git, "-C", tmp, *a], env=env).stdout.decode().strip()  # noqa: E731
    tip = out("rev-parse", "refs/heads/main")
    t = int(out("log", "-1", "--format=%ct", "refs/heads/main")) + 600
    stream = b""
    for v in range(PAGES_FILE_VERSIONS + 1):
        body = pages_file_text(v).encode()
        msg = (b"pages: the page renderer\n" if v == 0 else b"pages: version %d of the weights\n" % v)
        who = f"Dev {3 + v % 5} <dev{3 + v % 5}@example.com> {t + 600 * v} +0000\n"
        stream += f"commit refs/heads/main\nauthor {who}committer {who}".encode()
        stream += b"data %d\n%s" % (len(msg), msg)
        if v == 0:
            stream += f"from {tip}\n".encode()
        stream += f"M 100644 inline {PAGES_FILE}\n".encode() + b"data %d\n%s\n" % (len(body), body)
    stream += b"done\n"
    run([git, "-C", tmp, "fast-import", "--quiet", "--done"], input=stream, env=env)
    run([git, "-C", tmp, "-c", "pack.threads=1", "-c", "repack.writeBitmaps=false", "repack", "-a", "-d", "-q"],
        env=env)
    run([git, "-C", tmp, "pack-refs", "--all"], env=env)
    if (tmp / "main-marks").exists():
        (tmp / "main-marks").unlink()
    os.rename(tmp, dest)


def repo_state(d: Path) -> str:
    d = Path(os.path.realpath(d))
    packs = list((d / "objects" / "pack").glob("*.pack"))
    bitmaps = list((d / "objects" / "pack").glob("*.bitmap"))
    midx = (d / "objects" / "pack" / "multi-pack-index").exists()
    cg = (d / "objects" / "info" / "commit-graph").exists() or (d / "objects" / "info" / "commit-graphs").exists()
    loose = sum(1 for p in (d / "objects").glob("??/*"))
    parts = [f"{len(packs)} pack(s)", "bitmap" if bitmaps else "no bitmap", "commit-graph" if cg else "no commit-graph"]
    if midx:
        parts.append("multi-pack-index")
    if loose:
        parts.append(f"{loose} loose objects")
    return ", ".join(parts)


# ------------------------------------------------------------------------------------------------
# report


def fmt(x: float, unit: str) -> str:
    if unit in ("s",):
        return f"{x:.3f}" if x < 10 else f"{x:.1f}"
    if unit in ("ms",):
        return f"{x:.0f}" if x >= 10 else f"{x:.1f}"
    if unit in ("MiB", "MB/s", "packs/min"):
        return f"{x:.1f}" if x < 100 else f"{x:.0f}"
    return f"{x:.3g}"


def cell(s: dict, unit: str) -> str:
    return f"{fmt(s['median'], unit)} ({fmt(s['min'], unit)}–{fmt(s['max'], unit)})"


def pages_figures(results: dict) -> list[dict]:
    return [f for f in results["figures"] if f["group"] == "pages"]


def page_target_rows(results: dict) -> list[str]:
    rows = []
    for f in pages_figures(results):
        ref = (f", cgit {fmt(f['reference']['median'], 'ms')} ms, {f['ratio']:.2f}×"
               if f["reference"] else ", cgit: none")
        rows.append(f"| {PAGE_TARGETS[f['id']][0]} ≤ {f['target_ms']:g} ms | {f['repo']} | {f['proto']} | "
                    f"Kura {fmt(f['kura']['median'], 'ms')} ms{ref} | {'✅' if f['meets_target'] else '❌'} |")
    return rows


def pages_markdown(results: dict, heading: bool = True) -> str:
    """Figure 6: the pages table, what was measured on what, Kura's memory around it."""
    figs = pages_figures(results)
    if not figs:
        return ""
    m, info = results["meta"], results.get("pages", {})
    cg = results.get("cgit_setup", {})
    L = []
    if heading:
        L.append(f"Mode `{m['mode']}`, {m['date']}; Kura {m['kura_commit']}; cgit {cg.get('version', '?')} "
                 f"(Debian package) under {results.get('reference_setup', {}).get('nginx', 'nginx')} + fcgiwrap.")
        L.append("")
    r = m["repos"].get(info.get("repo", "pages"), {})
    if r:
        L.append(f"Repository `{info.get('repo')}`: {r['label']}: {r['commits']} commits, {r['refs']} refs, "
                 f"{r['files_at_head']} files at HEAD, {r['pack_bytes'] / MiB:.1f} MiB packed; maintained by Kura "
                 f"(`{m.get('maintain_cmd') or 'not maintained'}`: {r.get('kura_after_maintain', '?')}); cgit "
                 "reads the same directory.")
        L.append("")
    L.append(f"Each page: {info.get('runs', '?')} requests per server, alternating Kura / cgit, after "
             f"{info.get('warmup', '?')} warm-up requests each, anonymous, over one persistent HTTP/1.1 "
             "connection per server, timed at the client from sending the request to the last byte. "
             "Median (p90) in ms; ratio = Kura median / cgit median. cgit is uncached (`cache-size=0`).")
    L.append("")
    L.append("| page | variant | Kura ms | cgit ms | Kura / cgit | Kura target | size Kura / cgit (KiB) |")
    L.append("|---|---|---|---|---|---|---|")
    for f in figs:
        k, c = f["kura"], f["reference"]
        kc = f"{fmt(k['median'], 'ms')} ({fmt(k['p90'], 'ms')})"
        cc = f"{fmt(c['median'], 'ms')} ({fmt(c['p90'], 'ms')})" if c else "—"
        ratio = f"**{f['ratio']:.2f}×**" if f["ratio"] is not None else "—"
        b = f["bytes"]
        size = f"{b['kura'] / 1024:.0f} / " + (f"{b['cgit'] / 1024:.0f}" if b["cgit"] else "—")
        L.append(f"| {PAGE_TARGETS[f['id']][0]} | {f['proto']} | {kc} | {cc} | {ratio} | "
                 f"≤ {f['target_ms']:g} ms {'✅' if f['meets_target'] else '❌'} | {size} |")
    L.append("")
    met = sum(f["meets_target"] for f in figs)
    L.append(f"Kura meets {met} of its {len(figs)} page targets"
             + (": missed " + "; ".join(f"{PAGE_TARGETS[f['id']][0]} ({f['proto']}): {fmt(f['kura']['median'], 'ms')} ms "
                                         f"for ≤ {f['target_ms']:g} ms" for f in figs if not f["meets_target"])
                if met < len(figs) else "") + ".")
    L.append("")
    s = info.get("subjects", {})
    notes = []
    if info.get("tree_last_commits"):
        notes.append("Kura's tree pages showed a last commit for "
                     + ", ".join(f"{v} entries ({k})" for k, v in info["tree_last_commits"].items())
                     + "; cgit's tree page has no last-commit column (it lists names, modes and sizes only).")
    if "blob_highlight_spans" in info:
        notes.append(f"Kura's file page had {info['blob_highlight_spans']} highlighting spans; cgit shows the file "
                     "with line numbers and no highlighting (no source-filter configured).")
    if s:
        notes.append(f"Path log of a file: `{s.get('path_file')}`, the file most commits touched "
                     f"({s.get('path_file_commits')}), so both servers walk the whole history; of a folder: "
                     f"`{s.get('path_dir')}`. Commit pages: every timed request shows a different commit (the "
                     "same one on both servers in a round), from the middle 20 % of main's first-parent history, "
                     "the ones with the largest text diffs; the repeated commit/SHA figure asks for the median "
                     "one of them again and again. Code search has no cgit counterpart.")
    rss = results.get("idle_rss", {})
    if "before the pages" in rss:
        a, b = rss["before the pages"], rss.get("after the pages", {})
        peak = results.get("pages_rss", {}).get("kura_peak_mib", 0)

        def split(x):
            return (f"{x.get('kura_mib', 0):.1f} MiB (anonymous {x.get('kura_anon_mib', 0):.1f}, file-backed "
                    f"{x.get('kura_file_mib', 0):.1f})")
        steps, grew, last = info.get("kura_rss_after_mib", []), [], a.get("kura_anon_mib", 0)
        for name, _, anon, _ in steps:
            if anon - last >= 2:
                grew.append(f"{anon - last:+.0f} MiB after {name.split(' ', 1)[0].removeprefix('pages.')} "
                            f"({name.split(' ', 1)[1]})")
            last = anon
        notes.append(f"Kura's RSS (its own process): {split(a)} idle before the page runs, {peak:.1f} MiB at most "
                     f"during them, {split(b)} idle after them: "
                     f"{b.get('kura_anon_mib', 0) - a.get('kura_anon_mib', 0):+.1f} MiB anonymous memory"
                     + (" (" + ", ".join(grew) + ")" if grew else "")
                     + f", {b.get('kura_file_mib', 0) - a.get('kura_file_mib', 0):+.1f} MiB file-backed pages "
                     "(mostly the repository's mmapped pack and index files, which the kernel can reclaim).")
    for n in notes:
        L.append(n)
        L.append("")
    return "\n".join(L)


def triggers_figures(results: dict) -> list[dict]:
    return [f for f in results["figures"] if f["group"] == "triggers"]


def trigger_target_rows(results: dict) -> list[str]:
    rows = []
    for f in triggers_figures(results):
        if "target_text" in f:
            rows.append(f"| push-to-webhook latency {f['target_text']} | {f['repo']} | {f['proto']} | "
                        f"Kura {fmt(f['kura']['median'], 'ms')} ms, no peer | {'✅' if f['meets_target'] else '❌'} |")
    return rows


def triggers_markdown(results: dict, heading: bool = True) -> str:
    """Figure 7: push-to-webhook latency (Kura only: git http-backend has no webhooks)."""
    figs = triggers_figures(results)
    if not figs:
        return ""
    m, info = results["meta"], results.get("triggers", {})
    L = []
    if heading:
        L.append(f"Mode `{m['mode']}`, {m['date']}; Kura {m['kura_commit']}; {m['git']}.")
        L.append("")
    L.append(f"Repository `{info.get('repo', 'bench/' + TRIGGER_REPO)}` (created empty) with one webhook trigger "
             f"(JSON, unsigned) to a receiver in the benchmark process (Python `http.server` on 127.0.0.1, "
             f"answers 200 at once; `KURA_TRIGGER_ALLOWED_TARGETS=127.0.0.1`). After an initial push that "
             f"creates `main`, {info.get('pushes', '?')} sequential pushes of one new commit each (made up "
             "front, one line of a small file changed) with the `write` token; each push is timed from just "
             "before `git push` starts to the arrival of the event whose `after` is that commit (the whole "
             "body read), and the next push starts only then. Median is p50; in ms.")
    L.append("")
    L.append("| figure | metric | Kura p50 | Kura p90 | Kura max | reference | Kura / ref | target |")
    L.append("|---|---|---|---|---|---|---|---|")
    for f in figs:
        k = f["kura"]
        target = f"{f['target_text']} {'✅' if f['meets_target'] else '❌'}" if "target_text" in f else ""
        L.append(f"| push triggers | {f['metric']} ({f['unit']}) | {fmt(k['median'], 'ms')} | {fmt(k['p90'], 'ms')} "
                 f"| {fmt(k['max'], 'ms')} | — | — | {target} |")
    if info:
        L.append(f"| push triggers | events received | {info['received']} of {info['pushes']} | | | — | — | |")
    L.append("")
    notes = []
    if info:
        notes.append(f"The pusher saw `remote: {info.get('remote_line') or '(no queued line)'}`; the events came "
                     f"with `X-Kura-Event: {', '.join(info['event_headers']['X-Kura-Event'])}` and "
                     f"`X-Kura-Delivery` {info['event_headers']['X-Kura-Delivery']}, "
                     f"{info['event_bytes'] / 1024:.1f} KiB of JSON each (median). The initial push's event "
                     f"took {info['initial_push_latency_ms']:.0f} ms. Kura's CPU per push, delivery included: "
                     f"{info['kura_cpu_per_push_ms']:.0f} ms (mean over the {info['pushes']} pushes).")
        if info.get("duplicates"):
            notes.append(f"{info['duplicates']} event(s) arrived more than once.")
    notes.append("\"Event after git push returned\" is negative when the POST arrived before the `git push` "
                 "process had exited. There is no peer for this figure: git http-backend has no webhooks.")
    for n in notes:
        L.append(n)
        L.append("")
    return "\n".join(L)


def markdown(results: dict, pages: bool = True, triggers: bool = True) -> str:
    m = results["meta"]
    L = []
    L.append(f"Mode `{m['mode']}`, {m['date']}; Kura {m['kura_commit']}; {m['git']}; "
             + (f"reference: {results['reference_setup'].get('nginx', 'nginx')} + fcgiwrap + git http-backend."
                if "reference_setup" in results else "no reference (none of the groups run has a peer)."))
    L.append("")
    only_pages = all(r.get("kind") == "pages" for r in m["repos"].values())
    if not m["repos"]:
        pass  # only figure 7, on a repository of its own
    elif m["maintained"] and only_pages:
        L.append(f"**Kura's repository was maintained** (`{m['maintain_cmd']}`) before measuring; cgit reads the "
                 "same directory.")
    elif m["maintained"]:
        L.append(f"**Kura's repositories were maintained** (`{m['maintain_cmd']}`) before measuring; the reference "
                 "serves its own unmaintained copies of the same repositories"
                 + (" (cgit reads Kura's `pages` directory)." if "pages" in m["repos"] else "."))
    elif m["maintain_available"]:
        L.append("`kura repo maintain` exists but was not run (--no-maintain): both servers serve the same "
                 "unmaintained files.")
    else:
        L.append("`kura repo maintain` does not exist yet: both servers serve the same unmaintained files "
                 "(the reference's repository root holds symlinks to Kura's repository directories).")
    if m["repos"]:
        L.append("")
        L.append("Repositories:")
        L.append("")
    for k, r in m["repos"].items():
        extra = ""
        if "kura_after_maintain" in r:
            extra = f"; Kura after maintenance: {r['kura_after_maintain']} ({r['kura_maintain_seconds']} s)"
        L.append(f"- `{k}`: {r['label']}: {r['commits']} commits, {r['refs']} refs, {r['files_at_head']} files "
                 f"at HEAD, {r['pack_bytes'] / MiB:.1f} MiB packed; reference copy: {r.get('reference_state', '?')}{extra}")
    if m["repos"]:
        L.append("")
    # the targets first
    rows = [f for f in results["figures"] if "target" in f]
    idle = results.get("idle_rss", {})
    prows = page_target_rows(results) if pages else []
    prows += trigger_target_rows(results) if triggers else []
    if rows or idle or prows:
        L.append("Targets from the issue (Kura / reference, ratio of medians):")
        L.append("")
        L.append("| target | repo | variant | Kura / ref | |")
        L.append("|---|---|---|---|---|")
        for f in rows:
            L.append(f"| {TARGETS[f['id']][0]} ≤ {f['target']}× | {f['repo']} | {f['proto'] or ''} | "
                     f"{f['ratio']:.2f}× | {'✅' if f['meets_target'] else '❌'} |")
        if idle.get("after start"):
            v = idle["after start"]["kura_mib"]
            L.append(f"| Kura idle RSS ≤ {IDLE_RSS_TARGET_MB:g} MB | | | {v:.1f} MiB | "
                     f"{'✅' if v <= IDLE_RSS_TARGET_MB else '❌'} |")
        mem = results.get("memory")
        if mem:
            for what, v, tgt in (("Kura's own peak RSS during a", mem["peak_mib"], MEMORY_PEAK_TARGET_MB),
                                 (f"Kura's RSS {mem['after_s']} s after a", mem["after_mib"], MEMORY_AFTER_TARGET_MB)):
                L.append(f"| {what} {mem['push_mb']} MB push ≤ {tgt:g} MB | memory | | {v:.1f} MiB | "
                         f"{'✅' if v * MiB <= tgt * 1e6 else '❌'} |")
        L += prows
        L.append("")
    others = [f for f in results["figures"] if f["group"] not in ("pages", "triggers")]
    if others:
        L.append("All figures. Each cell: median (min–max) over the runs; ratio = Kura median / reference median "
                 "(pairwise ratios of the alternating runs in brackets). Lower is better unless marked ↑.")
        L.append("")
        L.append("| figure | repo | variant | metric | Kura | reference | Kura / ref | target |")
        L.append("|---|---|---|---|---|---|---|---|")
    for f in others:
        ratio = "n/a"
        if f["ratio"] is not None:
            ratio = f"**{f['ratio']:.2f}×**"
            if f.get("pair_ratio"):
                ratio += f" ({f['pair_ratio']['min']:.2f}–{f['pair_ratio']['max']:.2f})"
        target = ""
        if "target" in f:
            target = f"≤ {f['target']}× " + ("✅" if f["meets_target"] else "❌")
        metric = f["metric"] + (" ↑" if f["better"] == "higher" else "")
        L.append(f"| {f['group']} | {f['repo']} | {f['proto'] or ''} | {metric} ({f['unit']}) | "
                 f"{cell(f['kura'], f['unit'])} | {cell(f['reference'], f['unit'])} | {ratio} | {target} |")
    L.append("")
    if pages and pages_figures(results):
        L.append("### Pages vs cgit")
        L.append("")
        L.append(pages_markdown(results, heading=False))
    if triggers and triggers_figures(results):
        L.append("### Push triggers")
        L.append("")
        L.append(triggers_markdown(results, heading=False))
    idle = results.get("idle_rss", {})
    if idle:
        a = idle.get("after start", {})
        b = idle.get("after the run", {})
        ok = a.get("kura_mib", 1e9) <= IDLE_RSS_TARGET_MB
        L.append(f"Kura idle RSS (its own process): {a.get('kura_mib', 0):.1f} MiB after start, "
                 f"{b.get('kura_mib', 0):.1f} MiB idle after the run (target ≤ {IDLE_RSS_TARGET_MB:g} MB "
                 f"{'✅' if ok else '❌'}"
                 + (f"); reference idle (nginx + fcgiwrap processes, "
                    f"{results['reference_setup'].get('fcgiwrap_workers', '?')} fcgiwrap workers): "
                    f"{a.get('reference_tree_mib', 0):.1f} MiB." if "reference_setup" in results else
                    "; no reference was started)."))
    mem = results.get("memory")
    if mem:
        L.append("")
        L.append(f"Memory (figure 8): a {mem['push_mb']} MB push (incompressible, one commit) to an empty "
                 f"repository took {mem['push_s']:.1f} s; Kura's own process: {mem['before_mib']:.1f} MiB before, "
                 f"{mem['peak_mib']:.1f} MiB at its peak (sampled every 20 ms), {mem['after_mib']:.1f} MiB "
                 f"{mem['after_s']} s after the push.")
    L += stages_markdown(results)
    r16 = results.get("kura_rss_16")
    if r16:
        L.append("")
        L.append(f"Under 16 parallel clones of `{r16['repo']}` (figure 2, N=16): Kura's own process peaks at "
                 f"{cell(r16['kura_process_peak_mib'], 'MiB')} MiB RSS, its git children at "
                 f"{cell(r16['kura_children_peak_mib'], 'MiB')} MiB (sum of RSS); the reference's nginx + fcgiwrap "
                 f"processes at {cell(r16['reference_main_peak_mib'], 'MiB')} MiB, its CGI children at "
                 f"{cell(r16['reference_children_peak_mib'], 'MiB')} MiB.")
    for n in results.get("notes", []):
        L.append("")
        L.append(n)
    L.append("")
    r = m["runs"]
    L.append(f"Runs per server: clones {r['clone_runs']}; ls-remote / fetch {r['small_runs']} of "
             f"{r['small_batch']} operations; pushes {r['push_runs']} of {r['push_batch']}; throughput "
             f"{r['tput_runs']} per level, requests per run "
             + ", ".join(f"N={n}: {q}" for n, q in m["tput_levels"].items())
             + f"; pages {r.get('page_runs', '?')} requests each"
             + (f"; trigger pushes {r['trigger_pushes']}" if "trigger_pushes" in r else "")
             + (f" (groups run: {m['only']})" if m.get("only") else "")
             + f". Whole run {results.get('duration_s', 0) / 60:.1f} min.")
    return "\n".join(L) + "\n"


STAGE_ORDER = (
    ("authenticated", "authentication (the `Caller` extractor; anonymous here)"),
    ("access decided", "the access decision (repository lookup in the database)"),
    ("git started", "spawning `git upload-pack --advertise-refs`"),
    ("first byte", "from the spawn to git's first output"),
    ("output ended", "from the spawn to the end of git's output"),
    ("git exited", "from the end of the output to git's exit status"),
)


def stages_markdown(results: dict) -> list[str]:
    st = results.get("stages")
    if not st:
        return []
    L = ["", f"Where the time of one `GET info/refs` goes (figure 10; `{next(iter(st.values()))['repo']}`, "
         "medians of Kura's own `request stage` debug lines and of the client's view, ms):", "",
         "| | v2 | v0 |", "|---|---|---|"]

    def val(v):
        return f"{v:.2f}" if isinstance(v, (int, float)) else "–"
    for key, label in STAGE_ORDER:
        L.append(f"| {label} | " + " | ".join(val(st[p]["stages_ms"].get(key)) for p in ("v2", "v0")) + " |")
    for key, label in (("kura_head_ms", "Kura: response head at the client"),
                       ("kura_end_ms", "Kura: whole response at the client"),
                       ("reference_head_ms", "reference: response head at the client"),
                       ("reference_end_ms", "reference: whole response at the client"),
                       ("direct_git_ms", "git upload-pack --advertise-refs alone, with Kura's flags")):
        L.append(f"| {label} | " + " | ".join(val(st[p].get(key)) for p in ("v2", "v0")) + " |")
    return L


def machine_block(results: dict) -> str:
    m = results["meta"]
    return (f"- date: {m['date']}\n- `nproc`: {m['nproc']}\n- `uname -r`: {m['kernel']}\n- git: {m['git']}\n"
            f"- `free -g`:\n\n```\n{m['free_g']}\n```\n")


def update_doc(results: dict):
    """Replaces the "Latest results" block when the run measured more than the pages and the
    triggers, the block of the "Pages vs cgit" section when it measured the pages, and the block
    of the "Push triggers" section when it measured the triggers (so `--only pages` leaves the
    other figures alone, and a run without the pages leaves the pages figures alone; the same
    for the triggers)."""
    doc = ROOT / "BENCHMARKS.md"
    text = doc.read_text()
    blocks = []
    if any(f["group"] not in ("pages", "triggers") for f in results["figures"]):
        blocks.append(("<!-- results:begin -->", "<!-- results:end -->",
                       markdown(results, pages=False, triggers=False)))
    if pages_figures(results):
        blocks.append(("<!-- pages-results:begin -->", "<!-- pages-results:end -->", pages_markdown(results)))
    if triggers_figures(results):
        begin, end = "<!-- triggers-results:begin -->", "<!-- triggers-results:end -->"
        if begin in text and end in text:
            blocks.append((begin, end, triggers_markdown(results)))
        else:
            log(f"warning: {doc} has no {begin} ... {end} markers: the push-trigger figures were not written")
    if not blocks:
        return
    for begin, end, md in blocks:
        if begin not in text or end not in text:
            raise BenchError(f"{doc} has no {begin} ... {end} markers")
        block = f"{begin}\n\nMachine:\n\n{machine_block(results)}\n{md}\n{end}"
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end):]
    doc.write_text(text)
    log(f"updated {doc}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="bench/run", description="Kura vs git http-backend (nginx + fcgiwrap); "
                                 "Kura's pages vs cgit (--only pages); push-to-webhook latency "
                                 "(--only triggers)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", dest="mode", action="store_const", const="quick", help="the default, under 10 minutes")
    g.add_argument("--full", dest="mode", action="store_const", const="full", help="20 000 commits, more runs")
    g.add_argument("--tiny", dest="mode", action="store_const", const="tiny", help="smoke test of the harness only")
    ap.add_argument("--repo", action="append", metavar="PATH", help="also benchmark this repository (repeatable)")
    ap.add_argument("--runs", type=int, help="override every repeat count")
    ap.add_argument("--only", help=f"comma list of {','.join(GROUPS)} (default: all)")
    ap.add_argument("--no-maintain", action="store_true", help="do not run `kura repo maintain` even if it exists")
    ap.add_argument("--no-build", action="store_true", help="use the existing release binary")
    ap.add_argument("--kura-bin", help="use this kura binary instead of building")
    ap.add_argument("--no-install", action="store_true", help="never run apt-get")
    ap.add_argument("--update-doc", action="store_true", help="write the table into BENCHMARKS.md")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out"), help="output folder (default bench/out)")
    ap.set_defaults(mode="quick")
    args = ap.parse_args(argv)

    try:
        b = Bench(args)
    except BenchError as e:
        log(f"error: {e}")
        return 2

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_term)  # also when started in the background (SIGINT ignored)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    try:
        b.run()
    except KeyboardInterrupt:
        log("interrupted; stopping the servers")
        return 130
    except BenchError as e:
        log(f"error: {e}")
        return 1
    finally:
        b.procs.stop_all()
    b.results["meta"] = b.meta()
    md = markdown(b.results)
    (b.out / "results.json").write_text(json.dumps(b.results, indent=2, default=str))
    (b.out / "results.md").write_text(md)
    if args.update_doc:
        update_doc(b.results)
    print(md)
    log(f"wrote {b.out / 'results.md'} and {b.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
