"""Deterministic benchmark repositories, built with `git fast-import`.

The same parameters always give the same objects (fixed seed, fixed author/committer dates,
fixed names), and the final repack is single-threaded so the pack bytes are the same too.

Shape: a main line of commits touching a few text files each, feature branches forking off
it (some merged back with merge commits, the rest left as branches), annotated and lightweight
tags, and a few large incompressible blobs (a few MB each, one of them rewritten later).
`add_many_refs` makes the copy with thousands of extra refs used for ls-remote / no-op fetch.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

GENERATOR_VERSION = 3  # bump when the output of this file changes

BASE_TIME = 1_600_000_000  # 2020-09-13, every date is BASE_TIME + a multiple of 10 minutes

WORDS = (
    "let mut self fn return match if else for while loop struct enum impl trait pub use mod "
    "const static async await move ref where type as in unsafe crate super Some None Ok Err "
    "value count index buffer result error config request response handler stream reader "
    "writer client server repo commit tree blob object pack refs branch tag merge push fetch "
    "clone upload receive negotiate delta window depth bitmap graph cache lock queue worker"
).split()


@dataclass(frozen=True)
class GenParams:
    commits: int = 3000
    files: int = 2000
    branches: int = 150
    tags: int = 100
    large_blobs: int = 3
    large_blob_mb: float = 3.0
    seed: int = 1

    def key(self) -> str:
        blob = json.dumps({"v": GENERATOR_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def label(self) -> str:
        return (
            f"generated ({self.commits} commits, {self.files} files, "
            f"{self.branches} branches, {self.tags} tags, "
            f"{self.large_blobs} large blobs of ~{self.large_blob_mb:g} MB, seed {self.seed})"
        )


def _git_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL="/dev/null",
        LC_ALL="C",
        TZ="UTC",
    )
    return env


def _line(rng: random.Random) -> str:
    indent = "    " * rng.randint(0, 3)
    n = rng.randint(2, 10)
    return indent + " ".join(rng.choice(WORDS) for _ in range(n)) + ";"


def _file_body(rng: random.Random, lines: int) -> list[str]:
    return [_line(rng) for _ in range(lines)]


def _edit(rng: random.Random, body: list[str]) -> list[str]:
    """A small edit: change, insert or delete a few lines."""
    body = list(body)
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        pos = rng.randrange(len(body) + 1)
        if op < 0.5 and pos < len(body):
            body[pos] = _line(rng)
        elif op < 0.85 or len(body) < 5:
            for _ in range(rng.randint(1, 6)):
                body.insert(pos, _line(rng))
        elif pos < len(body):
            del body[pos : pos + rng.randint(1, 3)]
    return body


class _Stream:
    """Writes a fast-import stream straight into the process's stdin."""

    def __init__(self, fh):
        self.fh = fh

    def raw(self, s: str) -> None:
        self.fh.write(s.encode())

    def data(self, payload: bytes) -> None:
        self.fh.write(b"data %d\n" % len(payload))
        self.fh.write(payload)
        self.fh.write(b"\n")

    def who(self, kind: str, n: int, t: int) -> None:
        self.raw(f"{kind} Dev {n} <dev{n}@example.com> {t} +0000\n")


def generate(params: GenParams, dest: Path, git: str = "git", log=print) -> dict:
    """Builds the bare repository `dest` (must not exist). Returns a summary dict."""
    rng = random.Random(params.seed)
    dest = Path(dest).resolve()
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    env = _git_env()
    subprocess.run(
        [git, "init", "--bare", "--quiet", "--template=", "--initial-branch=main", str(tmp)],
        check=True,
        env=env,
    )
    marks = tmp / "marks"
    proc = subprocess.Popen(
        [git, "-C", str(tmp), "fast-import", "--quiet", "--done", f"--export-marks={marks}"],
        stdin=subprocess.PIPE,
        env=env,
    )
    s = _Stream(proc.stdin)

    # the tree: src/<a>/<b>/file<n>.rs, a handful of top-level files
    paths = []
    for i in range(params.files):
        a, b = rng.randrange(40), rng.randrange(12)
        ext = rng.choice(["rs", "rs", "rs", "py", "md", "toml", "js"])
        paths.append(f"src/m{a:02d}/s{b:02d}/f{i:05d}.{ext}")
    paths += ["README.md", "Cargo.toml", "LICENSE", ".gitignore"]
    state = {p: _file_body(rng, rng.randint(20, 120)) for p in paths}

    mark = 0
    t = BASE_TIME

    def commit(ref, changes, parents=(), msg=None, author=None):
        nonlocal mark, t
        mark += 1
        t += 600
        n = author if author is not None else rng.randrange(25)
        s.raw(f"commit {ref}\nmark :{mark}\n")
        s.who("author", n, t)
        s.who("committer", n, t)
        s.data((msg or f"{rng.choice(WORDS)} {rng.choice(WORDS)}: change {mark}").encode() + b"\n")
        for i, p in enumerate(parents):
            s.raw(("from" if i == 0 else "merge") + f" :{p}\n")
        for path, content in changes:
            if content is None:
                s.raw(f"D {path}\n")
            else:
                s.raw(f"M 100644 inline {path}\n")
                s.data(content if isinstance(content, bytes) else content.encode())
        return mark

    def text(p):
        return "\n".join(state[p]) + "\n"

    # initial import in chunks of 500 files, like a project growing
    main_marks = []
    for i in range(0, len(paths), 500):
        chunk = paths[i : i + 500]
        m = commit("refs/heads/main", [(p, text(p)) for p in chunk], msg="import %d" % i)
        main_marks.append(m)

    remaining = max(0, params.commits - len(main_marks))
    # how many commits go to branches: each branch gets 1-4 commits
    branch_lens = [rng.randint(1, 4) for _ in range(params.branches)]
    while sum(branch_lens) > remaining // 3 and any(x > 1 for x in branch_lens):
        branch_lens = [max(1, x - 1) for x in branch_lens]
    main_count = max(1, remaining - sum(branch_lens))
    fork_at = sorted(rng.sample(range(main_count), min(params.branches, main_count)))
    fork_iter = iter(zip(fork_at, range(params.branches)))
    next_fork = next(fork_iter, None)
    pending_merges = []  # (merge_at_index, mark, changes)
    blob_at = sorted(rng.sample(range(main_count), min(main_count, params.large_blobs + 1)))
    big_versions = 0
    tag_every = max(1, main_count // max(1, params.tags))
    tags_done = 0
    branch_tips = {}

    def main_commit(i):
        nonlocal big_versions
        ch = []
        if blob_at and blob_at[0] <= i:
            blob_at.pop(0)
            k = big_versions % max(1, params.large_blobs)
            size = int(params.large_blob_mb * 1024 * 1024 * rng.uniform(0.6, 1.4))
            ch.append((f"assets/blob{k}.bin", rng.randbytes(size)))
            big_versions += 1
        for p in rng.sample(paths, rng.randint(1, 4)):
            state[p] = _edit(rng, state[p])
            ch.append((p, text(p)))
        return commit("refs/heads/main", ch, parents=[main_marks[-1]])

    for i in range(main_count):
        # a feature branch forks here
        while next_fork is not None and next_fork[0] == i:
            _, bi = next_fork
            parent = main_marks[-1]
            changes_all = {}
            for _ in range(branch_lens[bi]):
                ch = []
                for p in rng.sample(paths, rng.randint(1, 3)):
                    base = changes_all.get(p, state[p])
                    new = _edit(rng, base)
                    changes_all[p] = new
                    ch.append((p, "\n".join(new) + "\n"))
                parent = commit(f"refs/heads/feature/{bi:04d}", ch, parents=[parent])
            branch_tips[bi] = parent
            if bi % 2 == 0:  # half of them get merged back a bit later
                pending_merges.append((i + rng.randint(1, 30), parent, changes_all, bi))
            next_fork = next(fork_iter, None)

        merged = [pm for pm in pending_merges if pm[0] <= i]
        if merged:
            pm = merged[0]
            pending_merges.remove(pm)
            _, fmark, changes_all, bi = pm
            for p, body in changes_all.items():
                state[p] = body
            m = commit(
                "refs/heads/main",
                [(p, text(p)) for p in changes_all],
                parents=[main_marks[-1], fmark],
                msg=f"Merge branch 'feature/{bi:04d}'",
            )
            main_marks.append(m)
        else:
            main_marks.append(main_commit(i))
        m = main_marks[-1]

        if (i + 1) % tag_every == 0 and tags_done < params.tags:
            if tags_done % 2 == 0:
                t += 60
                s.raw(f"tag v{tags_done // 10}.{tags_done % 10}.0\nfrom :{m}\n")
                s.who("tagger", 0, t)
                s.data(f"release v{tags_done // 10}.{tags_done % 10}.0\n".encode())
            else:
                s.raw(f"reset refs/tags/build-{tags_done:04d}\nfrom :{m}\n\n")
            tags_done += 1

    s.raw("done\n")
    proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError("git fast-import failed")

    # a merged feature branch stays as a ref only half the time (deleted after merge otherwise)
    mark_oid = {}
    for line in marks.read_text().splitlines():
        k, v = line.split()
        mark_oid[int(k[1:])] = v
    deletes = "".join(
        f"delete refs/heads/feature/{bi:04d}\n" for bi in branch_tips if bi % 4 == 0
    )
    if deletes:
        subprocess.run(
            [git, "-C", str(tmp), "update-ref", "--stdin"], input=deletes.encode(), check=True, env=env
        )
    (tmp / "main-marks").write_text("\n".join(mark_oid[m] for m in main_marks) + "\n")
    marks.unlink()

    log(f"  repacking {tmp.name} (single-threaded, for identical bytes)...")
    subprocess.run(
        [git, "-C", str(tmp), "-c", "pack.threads=1", "-c", "repack.writeBitmaps=false",
         "-c", "pack.writeBitmapHashCache=false", "repack", "-a", "-d", "-f", "-q",
         "--window=10", "--depth=50"],
        check=True,
        env=env,
    )
    subprocess.run([git, "-C", str(tmp), "pack-refs", "--all"], check=True, env=env)
    subprocess.run([git, "-C", str(tmp), "prune"], check=True, env=env)
    os.rename(tmp, dest)
    return describe(dest, git)


def add_many_refs(src: Path, dest: Path, count: int, git: str = "git") -> dict:
    """Copy of `src` plus `count` refs (60% branches, 40% lightweight tags) on main commits."""
    dest = Path(dest).resolve()
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp, symlinks=True)
    env = _git_env()
    commits = (src / "main-marks").read_text().split()
    rng = random.Random(count)
    lines = []
    for i in range(count):
        oid = commits[rng.randrange(len(commits))]
        if i % 5 < 3:
            lines.append(f"create refs/heads/many/b{i:05d} {oid}\n")
        else:
            lines.append(f"create refs/tags/many/t{i:05d} {oid}\n")
    subprocess.run(
        [git, "-C", str(tmp), "update-ref", "--stdin"], input="".join(lines).encode(), check=True, env=env
    )
    subprocess.run([git, "-C", str(tmp), "pack-refs", "--all"], check=True, env=env)
    os.rename(tmp, dest)
    return describe(dest, git)


def describe(repo: Path, git: str = "git") -> dict:
    env = _git_env()

    def out(*args):
        return subprocess.run(
            [git, "-C", str(repo), *args], check=True, env=env, capture_output=True, text=True
        ).stdout

    refs = out("for-each-ref", "--format=%(refname)").split()
    head = out("symbolic-ref", "HEAD").strip()
    commits = int(out("rev-list", "--all", "--count").strip() or 0)
    files = len(out("ls-tree", "-r", "--name-only", head).splitlines()) if refs else 0
    packs = list((repo / "objects" / "pack").glob("*.pack"))
    return {
        "commits": commits,
        "refs": len(refs),
        "branches": sum(r.startswith("refs/heads/") for r in refs),
        "tags": sum(r.startswith("refs/tags/") for r in refs),
        "files_at_head": files,
        "pack_bytes": sum(p.stat().st_size for p in packs),
        "head": head,
    }


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="generate a benchmark repository")
    ap.add_argument("dest", type=Path)
    for f in GenParams.__dataclass_fields__.values():
        ap.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default)
    a = ap.parse_args()
    p = GenParams(**{k: getattr(a, k) for k in GenParams.__dataclass_fields__})
    print(json.dumps(generate(p, a.dest), indent=2))
