"""``python -m bench.reads_again``: the reads benchmark again on the data set a
``make bench`` run with reads left in ``BENCH_DATABASE_URL`` (the bench leaves its
database behind; nothing here recreates or changes it), to compare changes to the pages
without generating 2M messages each time. Same measurement as ``make bench``'s
(``bench.reads.measure``), printed as its rows.

  BENCH_READ_REPEAT    timed requests per read                     30
  BENCH_PROFILE=read   instead: cProfile that read's requests ("inbox list page",
                       "thread page", ...) and print the costliest functions
"""

from __future__ import annotations

import cProfile
import os
import pstats
import secrets
import sys
import tempfile


def _setup() -> None:
    # kept from one run to the next: the static files are collected once
    workdir = os.path.join(tempfile.gettempdir(), "vbcrm-reads-again")
    os.environ.update(
        {
            "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL")
            or "postgres://postgres@127.0.0.1:5432/vbcrm_bench",
            "REDIS_URL": os.environ.get("BENCH_REDIS_URL") or "",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_READ_DOT_ENV_FILE": "0",
            "DJANGO_LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "vbcrm.settings",
            "VBCRM_DATA_DIR": os.path.join(workdir, "data"),
            "VBCRM_MEDIA_ROOT": os.path.join(workdir, "media"),
            "WHATSAPP_GATEWAY": "simulator",
        }
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("collectstatic", interactive=False, verbosity=0)


def main() -> None:
    _setup()
    from django.contrib.auth import get_user_model

    from bench import reads

    reader = get_user_model().objects.filter(username__startswith="bench-reader").first()
    if reader is None:
        raise SystemExit("no reads data set here: run BENCH_ONLY=reads make bench first")
    database_url = os.environ["DATABASE_URL"]
    repeat = int(os.environ.get("BENCH_READ_REPEAT") or 30)
    target = os.environ.get("BENCH_PROFILE")
    if target:
        profiler = cProfile.Profile()
        reads.measure(database_url, reader, repeat, only=target, profiler=profiler)
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.sort_stats("tottime").print_stats(40)
        stats.sort_stats("cumulative").print_stats(60)
        return
    for row in reads.measure(database_url, reader, repeat):
        q = row["queries"]
        for p in ("p50", "p95"):
            ours, floor = row[f"{p}_ms"], row[f"floor_{p}_ms"]
            own = row[f"page_floor_{p}_ms"]
            print(
                f"{row['read']} {p}: {ours} ms vs Django floor {floor} ms "
                f"({q} queries vs {row['floor_queries']}): {ours / floor:.2f}×; "
                f"vs the floor on its own statements {own} ms "
                f"({row['page_floor_queries']} queries): {ours / own:.2f}×"
            )


if __name__ == "__main__":
    main()
