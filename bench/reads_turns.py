"""``python -m bench.reads_turns OTHER_CHECKOUT``: the reads of this checkout and of
another (a ``git worktree`` of an earlier commit, say) timed in turns, on the data set a
``make bench`` run with reads left in ``BENCH_DATABASE_URL``.

On a small or shared machine a page's time moves by a third from one run to the next,
more than most changes to it; two runs one after the other compare the machine's moods.
Here each checkout serves its requests in its own process, and the two take turns, 10
requests at a time, so both see the same machine. Prints each read's p50 and p95 for
both, and this checkout's over the other's.

  BENCH_TURNS      turns of 10 requests per read and checkout          12
  BENCH_READS      the reads, by slug (inbox, thread, api-conversations,
                   api-messages, search-one, search-three: the search
                   benchmark's two searches), comma-separated            the first four
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
SLUGS = ("inbox", "thread", "api-conversations", "api-messages")
SEARCHES = ("search-one", "search-three")


def serve() -> None:
    """One checkout's side: read "<slug> <n>" lines, answer each with n timings."""
    from bench import reads_again

    reads_again._setup()
    from django.contrib.auth import get_user_model
    from django.db import close_old_connections
    from django.test import Client
    from django.urls import reverse

    from bench import search
    from conversations import selectors

    reader = get_user_model().objects.filter(username__startswith="bench-reader").first()
    if reader is None:
        raise SystemExit("no reads data set here: run BENCH_ONLY=reads make bench first")
    top = selectors.conversation_list(user=reader, limit=1)[0]
    found = reverse("conversations:search")
    urls = dict(
        zip(
            SLUGS + SEARCHES,
            (
                reverse("inbox"),
                reverse("conversations:detail", args=[top.pk]),
                "/api/whatsapp/conversations",
                f"/api/whatsapp/conversations/{top.pk}/messages",
                f"{found}?q={search.ONE_WORD}",
                f"{found}?q={search.THREE_WORDS.replace(' ', '+')}",
            ),
            strict=True,
        )
    )
    client = Client(SERVER_NAME="127.0.0.1")
    client.force_login(reader)

    def get(url: str) -> None:
        assert client.get(url).status_code == 200, url
        close_old_connections()  # as a served request hands its connection back

    for url in urls.values():
        for _ in range(3):
            get(url)
    print("ready", flush=True)
    for line in sys.stdin:
        slug, n = line.split()
        out = []
        for _ in range(int(n)):
            t = time.perf_counter()
            get(urls[slug])
            out.append(time.perf_counter() - t)
        print(json.dumps(out), flush=True)


def start_side(script: str, root: Path) -> tuple[subprocess.Popen, str]:
    """``script`` (a bench file of this checkout) run with ``--serve`` in ``root``, whose
    code it imports (the other checkout may not have it), and the first line it wrote."""
    run = (
        "import runpy, sys; sys.argv = ['', '--serve']; "
        f"runpy.run_path({script!r}, run_name='__main__')"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", run],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    # one at a time: both collect the static files into the same place
    line = proc.stdout.readline() if proc.stdout is not None else ""
    if not line:
        raise SystemExit(f"{root}: its side did not start")
    return proc, line


def _start(root: Path) -> subprocess.Popen:
    proc, line = start_side(__file__, root)
    if line.strip() != "ready":
        raise SystemExit(f"{root}: its side did not start")
    return proc


def _pct(values: list[float], p: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, len(ordered) * p // 100)] * 1000


def main() -> None:
    if sys.argv[1:] == ["--serve"]:
        serve()
        return
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    other = Path(sys.argv[1]).resolve()
    turns = int(os.environ.get("BENCH_TURNS") or 12)
    slugs = [s for s in (os.environ.get("BENCH_READS") or ",".join(SLUGS)).split(",") if s]
    sides = {"this": HERE, "other": other}
    procs = {name: _start(root) for name, root in sides.items()}
    times: dict[tuple[str, str], list[float]] = {(n, s): [] for n in sides for s in slugs}
    for turn in range(turns):
        for slug in slugs:
            order = list(procs) if turn % 2 else list(reversed(procs))
            for name in order:
                proc = procs[name]
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write(f"{slug} 10\n")
                proc.stdin.flush()
                times[(name, slug)] += json.loads(proc.stdout.readline())
    for proc in procs.values():
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait()
    print(f"this: {HERE}\nother: {other}\n")
    print("| read | this p50 / p95 (ms) | other p50 / p95 (ms) | this / other, p50 |")
    print("|---|---|---|---|")
    for slug in slugs:
        mine, theirs = times[("this", slug)], times[("other", slug)]
        print(
            f"| {slug} | {_pct(mine, 50):.1f} / {_pct(mine, 95):.1f} "
            f"| {_pct(theirs, 50):.1f} / {_pct(theirs, 95):.1f} "
            f"| {_pct(mine, 50) / _pct(theirs, 50):.2f}× |"
        )


if __name__ == "__main__":
    main()
