"""Cache benchmark: re-checks that only stat, restores that do not copy, pushes, no-op checks.

One command, one table; every figure is the median of ``--repeat`` (>= 5) timed runs after a
warm-up, and every row is compared with a baseline measured in the same run:

1. re-check of a run with N unchanged input files (default 100,000 files, ~3 GB): sharklib's
   ``check()`` vs a bare ``os.stat`` loop (the floor) and vs re-hashing everything; the bytes
   hashed by the re-check are counted (they must be 0);
2. restore of a reused 1 GB output: reflink out of the content store / a btrfs snapshot (loop
   mount, root only) vs the content store's copy on ext4 and a plain ``shutil.copyfile``;
3. compression + push of 1 GB to a ``file://`` remote and to a real S3 API (moto server on
   loopback): MB/s vs a plain uncompressed copy/upload of the same bytes;
4. no-op re-check of 1,000 and 10,000 recorded runs through ``check()`` in one process: per-check
   cost vs the ``os.stat`` floor; plus one fresh process doing import + one check vs
   ``python -c pass``.

Subprocesses (moto, the per-process check) run with PYTHONUNBUFFERED and
PYTHONDONTWRITEBYTECODE removed from their environment.

Run: ``.venv/bin/python benchmarks/bench_cache.py [--quick]`` (``--quick``: 10,000 files /
100 MB, 128 MB restore and push, 1,000 runs).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from sharklib.cache.cas import ContentStore
from sharklib.cache.remote import RemoteStore
from sharklib.cache.runcache import RunCache
from sharklib.hashing import StatCache, hash_files, sha256_file
from sharklib.model import Artifact, Output, Run, run_key_parts
from sharklib.runner.reuse import check, record

CLEAN_ENV = {k: v for k, v in os.environ.items()
             if k not in ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")}
Row = tuple[str, str, str]


def median_time(fn: Callable[[], object], repeat: int, before: Callable[[], object] | None = None,
                ) -> float:
    """Median wall time of ``fn`` over ``repeat`` runs after one warm-up (``before`` untimed)."""
    times = []
    for i in range(repeat + 1):
        if before is not None:
            before()
        t0 = time.perf_counter()
        fn()
        if i:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def key(name: str, root: Path):  # type: ignore[no-untyped-def]
    return run_key_parts([name], str(root), str(root), {"step.py": "0" * 64}, {"bench": "1"})


def fake_run(root: Path, name: str, inputs: list[Artifact], outputs: list[Output]) -> Run:
    now = time.time()
    return Run(run_id=uuid.uuid4().hex, argv=[name], cwd=str(root), started=now - 10, ended=now,
               exit_status=0, inputs=inputs, outputs=outputs, run_key=key(name, root).digest())


# -- 1. re-check of many unchanged files -----------------------------------------------------
def bench_recheck(base: Path, files: int, file_size: int, repeat: int) -> list[Row]:
    root = base / "recheck"
    (root / "in").mkdir(parents=True)
    block = os.urandom(file_size)
    paths = []
    for i in range(files):
        sub = root / "in" / f"{i // 1000:03d}"
        if i % 1000 == 0:
            sub.mkdir()
        p = sub / f"f{i:06d}.bin"
        with open(p, "wb") as fh:
            fh.write(i.to_bytes(8, "big"))
            fh.write(block)
        paths.append(str(p))
    total = files * (file_size + 8)
    (root / "out.txt").write_text("summary\n")
    time.sleep(2.1)  # let the files leave the stat cache's racy window
    statcache = StatCache(base / "recheck-stat.sqlite")
    digests = statcache.digests(paths)  # what capture would have hashed during the run
    inputs = [Artifact(p, d[0], d[1]) for p, d in digests.items()]
    out_sha, out_size = sha256_file(root / "out.txt")
    cache = RunCache(base / "recheck-cache", statcache=statcache)
    record(fake_run(root, "many.py", inputs, [Output(str(root / "out.txt"), out_sha, out_size)]),
           root=str(root), cache=cache)
    k = key("many.py", root)

    def do_check() -> None:
        assert check(k, cwd=str(root), root=str(root), cache=cache) is not None

    do_check()
    hashed_before = statcache.hashed_bytes
    t_check = median_time(do_check, repeat)
    hashed = statcache.hashed_bytes - hashed_before
    t_stat = median_time(lambda: [os.stat(p) for p in paths], repeat)
    t_hash = median_time(lambda: hash_files(paths), repeat)
    cache.close()
    label = f"{files:,} files, {total / 1e9:.2f} GB"
    return [
        (f"re-check {label}: os.stat loop (floor)", f"{t_stat:.3f} s", "1.00 (baseline)"),
        (f"re-check {label}: sharklib check()", f"{t_check:.3f} s",
         f"{t_check / t_stat:.2f}x the stat floor; {hashed} bytes hashed"),
        (f"re-check {label}: re-hash everything", f"{t_hash:.3f} s",
         f"check() is {t_hash / t_check:.1f}x faster"),
    ]


# -- 2. restore of a reused 1 GB output ------------------------------------------------------
def _big_file(path: Path, size: int) -> None:
    block = os.urandom(1 << 20)
    with open(path, "wb") as fh:
        for i in range(size >> 20):
            fh.write(i.to_bytes(8, "big") + block[8:])


@contextlib.contextmanager
def btrfs_mount(base: Path, size: int) -> Iterator[Path | None]:
    if os.geteuid() != 0 or not shutil.which("mkfs.btrfs"):
        yield None
        return
    img, mnt = base / "btrfs.img", base / "btrfs"
    mnt.mkdir()
    with open(img, "wb") as fh:
        fh.truncate(max(3 << 30, size * 4))
    loop = subprocess.run(["losetup", "-f", "--show", str(img)], capture_output=True,
                          text=True, check=False).stdout.strip()
    if not loop:
        yield None
        return
    try:
        subprocess.run(["mkfs.btrfs", "-q", loop], check=True, capture_output=True)
        subprocess.run(["mount", loop, str(mnt)], check=True, capture_output=True)
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False, capture_output=True)
        subprocess.run(["losetup", "-d", loop], check=False, capture_output=True)
        img.unlink(missing_ok=True)


def bench_restore(base: Path, size: int, repeat: int) -> list[Row]:
    rows: list[Row] = []
    mb = size / 1e6
    src = base / "restore-src.bin"
    _big_file(src, size)
    sha, _ = sha256_file(src)
    dest = base / "restore-dest.bin"

    def fresh(source: Path) -> Callable[[], None]:
        # Every timed restore starts alike: no dirty pages queued for writeback (the sections
        # before write gigabytes) and its source's bytes in the page cache (after the 3 GB
        # re-check one of them may have been evicted, and reading 1 GB from disk is not what
        # is being compared).
        def prepare() -> None:
            dest.unlink(missing_ok=True)
            os.sync()
            with open(source, "rb") as fh:
                while fh.read(1 << 24):
                    pass
        return prepare

    t_copy = median_time(lambda: shutil.copyfile(src, dest), repeat, before=fresh(src))
    rows.append((f"restore {mb:.0f} MB: shutil.copyfile on ext4", f"{t_copy * 1e3:.1f} ms",
                 "1.00 (baseline)"))
    store = ContentStore(base / "cas-ext4")
    store.put(str(src), sha)
    t = median_time(lambda: store.restore(sha, str(dest)), repeat, before=fresh(store.path(sha)))
    strategy = store.restore(sha, str(dest)).strategy
    rows.append((f"restore {mb:.0f} MB: content store on ext4 ({strategy})",
                 f"{t * 1e3:.1f} ms", f"{t / t_copy:.2f}x the copy"))
    store.close()
    with btrfs_mount(base, size) as mnt:
        if mnt is None:
            rows.append((f"restore {mb:.0f} MB: btrfs", "skipped", "needs root and btrfs-progs"))
            return rows
        bsrc = mnt / "src.bin"
        shutil.copyfile(src, bsrc)
        bdest = mnt / "dest.bin"
        bstore = ContentStore(mnt / "cas")
        bstore.put(str(bsrc), sha)
        t = median_time(lambda: bstore.restore(sha, str(bdest)), repeat)
        strategy = bstore.restore(sha, str(bdest)).strategy
        rows.append((f"restore {mb:.0f} MB: content store on btrfs ({strategy})",
                     f"{t * 1e3:.2f} ms", _faster(t_copy, t)))
        bstore.close()
        from sharklib.cache.btrfs import BtrfsStore, create_workspace

        ws = mnt / "ws"
        create_workspace(str(ws))
        shutil.copyfile(src, ws / "out.bin")
        time.sleep(2.1)  # outside the stat cache's racy window, as any real output soon is
        snap = BtrfsStore(str(ws))
        t_snap = median_time(lambda: snap.snapshot(uuid.uuid4().hex, str(ws)), repeat)
        snap.snapshot("bench", str(ws))
        snap.put(str(ws / "out.bin"), sha)
        wdest = ws / "restored.bin"
        t = median_time(lambda: snap.restore(sha, str(wdest)), repeat)
        strategy = snap.restore(sha, str(wdest)).strategy
        rows.append(("record on btrfs: snapshot of the workspace", f"{t_snap * 1e3:.2f} ms",
                     "per run, whatever the size"))
        rows.append((f"restore {mb:.0f} MB: from a btrfs snapshot ({strategy})",
                     f"{t * 1e3:.2f} ms", _faster(t_copy, t)))
        snap.close()
    return rows


def _faster(baseline: float, t: float) -> str:
    return f"{baseline / t:.0f}x faster than the copy" if t < baseline else \
        f"{t / baseline:.2f}x the copy"


# -- 3. compression + push -------------------------------------------------------------------
def _mixed_file(path: Path, size: int) -> None:
    """Half random, half repetitive bytes: something like real rasters and tables."""
    text = (b"species,cell,habitat,0.125\n" * 20000)[: 1 << 19]
    with open(path, "wb") as fh:
        for _ in range(size >> 20):
            fh.write(os.urandom(1 << 19))
            fh.write(text)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def moto() -> Iterator[str | None]:
    exe = Path(sys.executable).parent / "moto_server"
    if not exe.exists():
        yield None
        return
    port = _free_port()
    proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], env=CLEAN_ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait()


def bench_push(base: Path, size: int, repeat: int, s3: bool) -> list[Row]:
    rows: list[Row] = []
    mb = size / 1e6
    src = base / "push-src.bin"
    _mixed_file(src, size)
    sha, _ = sha256_file(src)
    remote = RemoteStore((base / "remote").as_uri())
    plain = base / "plain-copy.bin"
    t_copy = median_time(lambda: shutil.copyfile(src, plain), repeat,
                         before=lambda: plain.unlink(missing_ok=True))
    t_push = median_time(lambda: remote.put(str(src), sha), repeat,
                         before=lambda: remote.delete(sha))
    zsize = os.path.getsize(remote._obj(sha))
    rows.append((f"push {mb:.0f} MB to file://: plain copy", f"{mb / t_copy:.0f} MB/s",
                 "1.00 (baseline)"))
    rows.append((f"push {mb:.0f} MB to file://: zstd + verify + rename",
                 f"{mb / t_push:.0f} MB/s",
                 f"{t_copy / t_push:.2f}x the copy's speed; stored {zsize / size:.2f} of size"))
    if not s3:
        return rows
    with moto() as endpoint:
        if endpoint is None:
            rows.append(("push to S3 (moto)", "skipped", "moto[server] not installed"))
            return rows
        import s3fs

        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        opts = {"key": "bench", "secret": "bench", "client_kwargs": {"endpoint_url": endpoint}}
        fs = s3fs.S3FileSystem(**opts)
        fs.mkdir("bench")
        s3 = RemoteStore("s3://bench/cache", storage_options=opts)
        t_put = median_time(lambda: fs.put_file(str(src), "bench/plain.bin"), repeat,
                            before=lambda: fs.rm("bench/plain.bin") if fs.exists(
                                "bench/plain.bin") else None)
        t_s3 = median_time(lambda: s3.put(str(src), sha), repeat, before=lambda: s3.delete(sha))
        rows.append((f"push {mb:.0f} MB to S3 (moto): plain s3fs upload",
                     f"{mb / t_put:.0f} MB/s", "1.00 (baseline)"))
        rows.append((f"push {mb:.0f} MB to S3 (moto): zstd + verify", f"{mb / t_s3:.0f} MB/s",
                     f"{t_put / t_s3:.2f}x the upload's speed"))
    return rows


# -- 4. no-op re-check of many recorded runs -------------------------------------------------
def bench_noop(base: Path, counts: list[int], repeat: int) -> list[Row]:
    rows: list[Row] = []
    n = max(counts)
    root = base / "pipeline"
    (root / "data").mkdir(parents=True)
    cache = RunCache(base / "noop-cache", statcache=StatCache(base / "noop-stat.sqlite"))
    t0 = time.perf_counter()
    files = []
    for i in range(n):
        inp, out = root / "data" / f"in{i}.txt", root / "data" / f"out{i}.txt"
        inp.write_text(f"input {i}\n")
        out.write_text(f"output {i}\n")
        files += [str(inp), str(out)]
    time.sleep(2.1)
    for i in range(n):
        inp, out = root / "data" / f"in{i}.txt", root / "data" / f"out{i}.txt"
        ins = cache.statcache.digest(str(inp))
        outs = cache.statcache.digest(str(out))
        assert ins and outs
        record(fake_run(root, f"step{i}.py", [Artifact(str(inp), ins[0], ins[1])],
                        [Output(str(out), outs[0], outs[1])]), root=str(root), cache=cache,
               stdout=f"step {i}\n".encode())
    t_setup = time.perf_counter() - t0
    keys = [key(f"step{i}.py", root) for i in range(n)]
    for count in counts:
        def checks(count: int = count) -> None:
            for k in keys[:count]:
                assert check(k, cwd=str(root), root=str(root), cache=cache) is not None

        t = median_time(checks, repeat)
        t_stat = median_time(lambda count=count: [os.stat(f) for f in files[: 2 * count]],
                             repeat)
        rows.append((f"no-op re-check of {count:,} runs: stat of their files (floor)",
                     f"{t_stat * 1e3:.1f} ms", "1.00 (baseline)"))
        rows.append((f"no-op re-check of {count:,} runs: check() each, one process",
                     f"{t:.3f} s", f"{t / count * 1e6:.0f} us per check; "
                     f"{t / t_stat:.0f}x the floor"))
    cache.close()
    rows.append((f"(setup: recorded {n:,} runs)", f"{t_setup:.1f} s",
                 f"{t_setup / n * 1e3:.2f} ms per record()"))
    # one step as a pipeline runs it: a fresh interpreter importing sharklib and checking once
    script = (f"import sys; from pathlib import Path; from sharklib.cache.runcache import RunCache;"
              f"from sharklib.hashing import StatCache; from sharklib.runner.reuse import check;"
              f"from sharklib.model import run_key_parts; root=Path({str(root)!r});"
              f"k=run_key_parts(['step0.py'], str(root), str(root), {{'step.py': '0'*64}},"
              f"{{'bench': '1'}}); c=RunCache({str(base / 'noop-cache')!r},"
              f"statcache=StatCache({str(base / 'noop-stat.sqlite')!r}));"
              f"sys.exit(0 if check(k, cwd=str(root), root=str(root), cache=c) else 1)")
    t_py = median_time(lambda: subprocess.run([sys.executable, "-c", "pass"], env=CLEAN_ENV,
                                              check=True), repeat)
    # the fresh process must trust the key that signed the records: same SHARKLIB_HOME
    one_env = dict(CLEAN_ENV, SHARKLIB_HOME=os.environ["SHARKLIB_HOME"])
    t_one = median_time(lambda: subprocess.run([sys.executable, "-c", script], env=one_env,
                                               check=True), repeat)
    rows.append(("one step in a fresh process: python -c pass", f"{t_py * 1e3:.0f} ms",
                 "1.00 (baseline)"))
    rows.append(("one step in a fresh process: import sharklib + check()",
                 f"{t_one * 1e3:.0f} ms", f"+{(t_one - t_py) * 1e3:.0f} ms over bare python"))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes for a fast run")
    ap.add_argument("--files", type=int, default=None)
    ap.add_argument("--file-size", type=int, default=None)
    ap.add_argument("--restore-mb", type=int, default=None)
    ap.add_argument("--push-mb", type=int, default=None)
    ap.add_argument("--runs", default=None, help="comma-separated run counts (1000,10000)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-s3", action="store_true", help="skip the moto S3 push")
    ap.add_argument("--only", default="recheck,restore,push,noop")
    ap.add_argument("--workdir", default=None, help="where to create the test data")
    args = ap.parse_args()
    if args.repeat < 5:
        ap.error("--repeat must be at least 5")
    files = args.files or (10_000 if args.quick else 100_000)
    file_size = args.file_size or (10_000 if args.quick else 30_000)
    restore_mb = args.restore_mb or (128 if args.quick else 1024)
    push_mb = args.push_mb or (128 if args.quick else 1024)
    counts = [int(c) for c in (args.runs or ("1000" if args.quick else "1000,10000")).split(",")]
    only = set(args.only.split(","))
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="sharklib-bench-cache-", dir=args.workdir) as tmp:
        base = Path(tmp)
        os.environ["SHARKLIB_HOME"] = str(base / "home")
        steps = [("recheck", lambda: bench_recheck(base, files, file_size, args.repeat)),
                 ("restore", lambda: bench_restore(base, restore_mb << 20, args.repeat)),
                 ("push", lambda: bench_push(base, push_mb << 20, args.repeat, not args.no_s3)),
                 ("noop", lambda: bench_noop(base, counts, args.repeat))]
        for name, fn in steps:
            if name in only:
                print(f"... {name}", file=sys.stderr, flush=True)
                rows.extend(fn())
    w = max(len(r[0]) for r in rows)
    v = max(len(r[1]) for r in rows)
    print(f"{'measurement':<{w}}  {'median':>{v}}  compared with the baseline")
    print("-" * (w + v + 32))
    for label, value, ratio in rows:
        print(f"{label:<{w}}  {value:>{v}}  {ratio}")
    print(f"\nmedians of {args.repeat} runs after one warm-up; hashlib {hashlib.sha256().name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
