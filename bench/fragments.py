"""``python -m bench.fragments [OTHER_CHECKOUT]``: what the pages' hot templates cost to
render, on the data set a ``make bench`` run with reads left in ``BENCH_DATABASE_URL``:
a conversation list row and a thread's message (the Jinja2 fragments, 50 of each, as
the inbox and a thread page render them, in pt-BR), and the layout around every page
(``base.html`` around a page with nothing in it). In microseconds a row or message, and
milliseconds a layout: the best and the median of 7 runs (the best is what the code
costs; the median, what the machine gave it).

With another checkout (a ``git worktree`` of an earlier commit, say), both are measured
in turns, each in its own process, and this one's over the other's is printed; the
rendered bytes of both are compared too.

  BENCH_FRAGMENT_RUNS   runs of 30 renders each, per checkout and template     7
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
PARTS = ("row", "message", "layout")
CSRF = re.compile(r'(csrfmiddlewaretoken" value="|"X-CSRFToken": ")[^"]+')


def serve() -> None:
    """One checkout's side: read "<part> <runs>" lines, answer each with its timings."""
    from bench import reads_again

    reads_again._setup()
    from django.contrib.auth import get_user_model
    from django.contrib.messages.storage.fallback import FallbackStorage
    from django.template.loader import render_to_string
    from django.test import RequestFactory
    from django.utils import translation

    from conversations import jinja, selectors

    reader = get_user_model().objects.filter(username__startswith="bench-reader").first()
    if reader is None:
        raise SystemExit("no reads data set here: run BENCH_ONLY=reads make bench first")
    translation.activate("pt-br")
    rows = selectors.with_tags(list(selectors.conversation_list(user=reader, limit=50)))
    conversation = selectors.conversation_get(user=reader, conversation_id=rows[0].pk)
    messages = selectors.message_list(conversation=conversation, limit=50)
    request = RequestFactory().get("/profile/")
    request.user = reader
    request.session = {}  # type: ignore[assignment]
    request._messages = FallbackStorage(request)  # type: ignore[attr-defined]
    row_context = {"conversations": rows, "request": request, "list_has_more": True}
    message_context = {
        "messages_page": messages,
        "conversation": conversation,
        "request": request,
        "user": reader,
        "syslines": {},
        "has_older": True,
    }

    def layout() -> str:
        return render_to_string("registration/password_change_done.html", {}, request=request)

    parts = {
        "row": (lambda: jinja.render("conversations/_conversation_rows.html", row_context), rows),
        "message": (
            lambda: jinja.render("conversations/_messages.html", message_context),
            messages,
        ),
        "layout": (layout, None),
    }
    for render, _items in parts.values():
        for _ in range(10):
            render()
    digests = {name: _digest(render()) for name, (render, _items) in parts.items()}
    print(json.dumps(digests), flush=True)
    for line in sys.stdin:
        name, runs = line.split()
        render, items = parts[name]
        out = []
        for _ in range(int(runs)):
            t = time.perf_counter()
            for _ in range(30):
                render()
            each = (time.perf_counter() - t) / 30
            # a row or a message in µs; the layout in ms
            out.append(each / len(items) * 1e6 if items else each * 1e3)
        print(json.dumps(out), flush=True)


def _digest(html: str) -> str:
    # the CSRF token is masked afresh on every render
    return hashlib.sha256(CSRF.sub(r"\1", html).encode()).hexdigest()


def _start(root: Path) -> tuple[subprocess.Popen, dict[str, str]]:
    # imported here: the other checkout's side runs this file with its own bench/
    from bench.reads_turns import start_side

    proc, line = start_side(__file__, root)
    return proc, json.loads(line)


def main() -> None:
    if sys.argv[1:] == ["--serve"]:
        serve()
        return
    if len(sys.argv) > 2:
        raise SystemExit(__doc__)
    runs = int(os.environ.get("BENCH_FRAGMENT_RUNS") or 7)
    sides = {"this": HERE}
    if len(sys.argv) == 2:
        sides["other"] = Path(sys.argv[1]).resolve()
    started = {name: _start(root) for name, root in sides.items()}
    times: dict[tuple[str, str], list[float]] = {(n, p): [] for n in sides for p in PARTS}
    for turn in range(runs):
        for part in PARTS:
            order = list(started) if turn % 2 else list(reversed(started))
            for name in order:
                proc = started[name][0]
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write(f"{part} 1\n")
                proc.stdin.flush()
                times[(name, part)] += json.loads(proc.stdout.readline())
    for proc, _digests in started.values():
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait()
    unit = {"row": "µs a row", "message": "µs a message", "layout": "ms a page"}
    head = "| template | this: best / median | other: best / median | this / other, best |"
    print(head + " same bytes |")
    print("|---|---|---|---|---|")
    for part in PARTS:
        mine = times[("this", part)]
        cells = [f"{part} ({unit[part]})", f"{min(mine):.1f} / {statistics.median(mine):.1f}"]
        if "other" in started:
            theirs = times[("other", part)]
            same = started["this"][1][part] == started["other"][1][part]
            cells += [
                f"{min(theirs):.1f} / {statistics.median(theirs):.1f}",
                f"{min(mine) / min(theirs):.2f}×",
                "yes" if same else "no",
            ]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
