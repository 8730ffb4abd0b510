"""``python -m bench`` (``make bench``): run the benchmarks on loopback and print, for
each, our figure, the baseline measured in the same run, and the ratio.

Knobs (environment variables, defaults fit a 2-core machine in under 10 minutes):

  BENCH_DATABASE_URL   PostgreSQL server + database to (re)create   postgres://postgres@127.0.0.1:5432/vbcrm_bench
  BENCH_REDIS_URL      use this Redis instead of starting a private redis-server
  BENCH_ONLY           comma list of fanout,ingest,loadhold,memory,
                       reads,reports,search                         all
  BENCH_SOCKETS        agent sockets for the fan-out                1000
  BENCH_FANOUT_EVENTS  inbound messages streamed per fan-out run    40
  BENCH_FANOUT_RATE    messages per second in that stream           5
  BENCH_LIGHT_RATE     light-load ingest rate (messages/s)          50
  BENCH_LIGHT_SECONDS  light-load duration                          10
  BENCH_INGEST_N       messages injected at once for saturation     6000
  BENCH_INGEST_RUNS    saturation runs (and batched baselines)      3
  BENCH_RAW_BATCH      messages per transaction, batched baseline   100
  BENCH_NUMBERS        numbers for the memory run                   1,10,50
  BENCH_NUMBERS_PER_PROCESS  real numbers per child, shared rows     10 (1: none)
  BENCH_CONVERSATIONS  conversations generated for the reads        100000
  BENCH_MESSAGES       messages generated for the reads and search  2000000
  BENCH_READ_REPEAT    timed requests per read (and per search)     30
  BENCH_REPORT_REPEAT  timed requests per report                    10
  BENCH_HOLD_RATES     load-hold rates, messages/s in all           50,100,150
  BENCH_HOLD_SECONDS   how long each load-hold rate is held         60
  BENCH_HOLD_NUMBERS   numbers the load-hold rate is spread over    20
  BENCH_HOLD_SOCKETS   agent sockets for the load hold (2 webs)     200

Results also go to bench/results/<timestamp>.json (git-ignored).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench import infra


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


def knobs() -> dict[str, Any]:
    return {
        "database_url": os.environ.get("BENCH_DATABASE_URL")
        or "postgres://postgres@127.0.0.1:5432/vbcrm_bench",
        "redis_url": os.environ.get("BENCH_REDIS_URL") or None,
        "only": set(
            (os.environ.get("BENCH_ONLY") or "fanout,ingest,loadhold,memory,reads,reports,search")
            .replace(" ", "")
            .split(",")
        ),
        "sockets": _int("BENCH_SOCKETS", 1000),
        "fanout_events": _int("BENCH_FANOUT_EVENTS", 40),
        "fanout_rate": _float("BENCH_FANOUT_RATE", 5),
        "light_rate": _float("BENCH_LIGHT_RATE", 50),
        "light_seconds": _float("BENCH_LIGHT_SECONDS", 10),
        "ingest_n": _int("BENCH_INGEST_N", 6000),
        "ingest_runs": _int("BENCH_INGEST_RUNS", 3),
        "raw_batch": _int("BENCH_RAW_BATCH", 100),
        "numbers": [int(n) for n in (os.environ.get("BENCH_NUMBERS") or "1,10,50").split(",")],
        "numbers_per_process": _int("BENCH_NUMBERS_PER_PROCESS", 10),
        "conversations": _int("BENCH_CONVERSATIONS", 100_000),
        "messages": _int("BENCH_MESSAGES", 2_000_000),
        "read_repeat": _int("BENCH_READ_REPEAT", 30),
        "report_repeat": _int("BENCH_REPORT_REPEAT", 10),
        "hold_rates": [
            float(r) for r in (os.environ.get("BENCH_HOLD_RATES") or "50,100,150").split(",")
        ],
        "hold_seconds": _float("BENCH_HOLD_SECONDS", 60),
        "hold_numbers": _int("BENCH_HOLD_NUMBERS", 20),
        "hold_sockets": _int("BENCH_HOLD_SOCKETS", 200),
    }


_STARTED = time.monotonic()


def log(text: str) -> None:
    print(f"[{time.monotonic() - _STARTED:6.1f}s] {text}", file=sys.stderr, flush=True)


def ratio(ours: float | None, base: float | None) -> float | None:
    if not ours or not base:
        return None
    return round(ours / base, 2)


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median rate (the middle one of an odd number of runs)."""
    return sorted(runs, key=lambda r: r["per_second"] or 0)[len(runs) // 2]


def machine() -> dict[str, Any]:
    mem = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem = int(line.split()[1]) // (1024 * 1024)
    return {"cores": os.cpu_count(), "ram_gib": mem, "python": platform.python_version()}


def run(k: dict[str, Any]) -> dict[str, Any]:
    from bench import common, fanout, ingest, loadhold, memory, reads, reports, search

    results: dict[str, Any] = {"machine": machine(), "knobs": {**k, "only": sorted(k["only"])}}
    with infra.stack(k["database_url"], k["redis_url"]) as s:
        log("starting redis, the bench database and the simulator")
        s.start_redis()
        s.recreate_database()
        s.start_simulator()
        infra.django_setup(s)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        owner = common.make_users("bench-owner", 1)[0]
        worker = s.start_worker()
        web1, port1 = s.start_web("web1")
        (number,) = common.link_numbers(s, owner, ["Bench"])
        phone = number.phone_number
        log(f"number {number.pk} linked as {phone}")

        if k["only"] & {"fanout", "ingest"}:
            from whatsapp import services

            agents = common.make_users("bench-agent", min(100, k["sockets"]))
            for agent in agents:
                services.session_agent_add(session=number, user=agent)
            cookies = [common.session_cookie(agents[i % len(agents)]) for i in range(k["sockets"])]
            owner_cookie = common.session_cookie(owner)
            common.send(s, {"to": phone, "from": "5511977770000", "text": "warm up"})
            common.wait_messages(1)

        def section(name: str, fn) -> None:
            """One benchmark; a failure is recorded and the others still run."""
            if name not in k["only"]:
                return
            try:
                results[name] = fn()
            except Exception as exc:
                log(f"{name} FAILED: {exc!r} (see bench/results/logs/)")
                results.setdefault("errors", {})[name] = traceback.format_exc()

        def fanout_all() -> dict:
            n, ev, rate = k["sockets"], k["fanout_events"], k["fanout_rate"]
            log(f"fan-out: {n} sockets on one web process")
            one = fanout.run_ours(
                s, [port1], cookies, n, ev, rate, phone, "5511977770000", pids=[web1.pid]
            )
            size = one.get("frame_bytes") or 2500
            raw1, rport1 = s.start_raw("raw1")
            log(f"fan-out floor: {n} sockets on the raw ASGI app ({size} B frames)")
            one_raw = fanout.run_raw(s, [rport1], n, ev, rate, size, pids=[raw1.pid])
            s.stop(raw1)
            peer = s.start_socketio("socketio")
            if isinstance(peer, str):
                log(f"fan-out peer skipped: {peer}")
                sio: dict = {"skipped": peer}
            else:
                log(f"fan-out peer: {n} sockets on Socket.IO 4 (Node), io.emit to all")
                sio = fanout.run_raw(
                    s,
                    [peer[1]],
                    n,
                    ev,
                    rate,
                    size,
                    path=fanout.SOCKETIO_PATH,
                    protocol="socketio",
                    pids=[peer[0].pid],
                )
                s.stop(peer[0])
            web2, port2 = s.start_web("web2")
            log(f"fan-out: {n} sockets over two web processes")
            two = fanout.run_ours(
                s,
                [port1, port2],
                cookies,
                n,
                ev,
                rate,
                phone,
                "5511977770000",
                pids=[web1.pid, web2.pid],
            )
            raw1, rport1 = s.start_raw("raw1")
            raw2, rport2 = s.start_raw("raw2")
            log(f"fan-out floor: {n} sockets over two raw ASGI processes")
            two_raw = fanout.run_raw(
                s, [rport1, rport2], n, ev, rate, size, pids=[raw1.pid, raw2.pid]
            )
            for p in (raw1, raw2, web2):
                s.stop(p)
            return {
                "one": one,
                "one_raw": one_raw,
                "socketio": sio,
                "two": two,
                "two_raw": two_raw,
            }

        def ingest_all() -> dict:
            contacts = 20
            ingest.warm_up(s, phone, contacts)
            log(f"ingest: light load {k['light_rate']}/s for {k['light_seconds']}s")
            light = ingest.run_light(
                s, port1, owner_cookie, phone, contacts, k["light_rate"], k["light_seconds"]
            )
            # Saturation and its baseline alternate, a few times: on a small shared
            # machine one run of either can be off by a third; the medians are steadier.
            sats, raws = [], []
            for n in range(1, k["ingest_runs"] + 1):
                log(f"ingest: saturation {n}/{k['ingest_runs']}, {k['ingest_n']} messages at once")
                sats.append(
                    ingest.run_saturation(s, port1, owner_cookie, phone, contacts, k["ingest_n"])
                )
                log(f"ingest baseline {n}/{k['ingest_runs']}: raw psycopg, batched")
                raws.append(ingest.run_raw(s.database_url, k["ingest_n"], k["raw_batch"]))
            log("ingest baseline: raw psycopg, one transaction per message")
            small = min(k["ingest_n"], 2000)
            log(f"ingest: {small} messages at once: no webhook, a live receiver, a dead one")
            webhook = ingest.run_dead_receiver(
                s, port1, owner_cookie, phone, contacts, small, owner, number
            )
            return {
                "light": light,
                "saturation": _median_run(sats),
                "saturation_runs": [r["per_second"] for r in sats],
                "raw_batched": _median_run(raws),
                "raw_batched_runs": [r["per_second"] for r in raws],
                "raw_single": ingest.run_raw(s.database_url, min(k["ingest_n"], 2000), 1),
                "webhook": webhook,
            }

        def reads_data():
            """The reads' data set (made once: the reports measure it too), and its reader."""
            reader = common.make_users("bench-reader", 1)[0]
            if "reads_data" not in results:
                log(
                    f"reads: generating {k['conversations']} conversations, "
                    f"{k['messages']} messages"
                )
                results["reads_data"] = reads.generate(
                    s.database_url, reader, k["conversations"], k["messages"]
                )
                log(f"reads: generated in {results['reads_data']['seconds']}s")
            return reader

        def reads_all() -> list:
            reader = reads_data()
            log("reads: measuring")
            return reads.measure(s.database_url, reader, k["read_repeat"])

        def reports_all() -> list:
            reader = reads_data()
            results["reports_data"] = reports.generate_records(s.database_url)
            log(
                f"reports: {results['reports_data']['events']} conversation events in "
                f"{results['reports_data']['seconds']}s; measuring"
            )
            return reports.measure(s.database_url, reader, k["report_repeat"])

        def search_all() -> list:
            reader = reads_data()
            log("search: measuring")
            return search.measure(s.database_url, reader, k["read_repeat"])

        section("fanout", fanout_all)
        section("ingest", ingest_all)
        s.stop(web1)
        s.stop(worker)

        def loadhold_all() -> list:
            log(
                f"load hold: {k['hold_rates']} msg/s, {k['hold_seconds']}s each, "
                f"{k['hold_numbers']} numbers, {k['hold_sockets']} sockets, 2 webs, 2 workers"
            )
            return loadhold.run(
                s,
                owner,
                rates=k["hold_rates"],
                seconds=k["hold_seconds"],
                numbers=k["hold_numbers"],
                sockets=k["hold_sockets"],
            )

        section("loadhold", loadhold_all)

        def memory_all() -> dict:
            log(f"memory: {k['numbers']} simulated numbers")
            out = {"simulated": memory.measure(s, owner, k["numbers"])}
            log(f"memory: {k['numbers']} real (neonize) numbers, one child each")
            out["real"] = memory.measure_real(s, owner, k["numbers"])
            per_process = k["numbers_per_process"]
            if per_process > 1:
                log(f"memory: {k['numbers']} real numbers, {per_process} per child")
                try:
                    out["real_shared"] = memory.measure_real(s, owner, k["numbers"], per_process)
                except Exception as exc:  # the rows above are kept
                    log(f"memory, {per_process} per child FAILED: {exc!r}")
                    results.setdefault("errors", {})["memory_shared"] = traceback.format_exc()
            return out

        section("memory", memory_all)
        section("reads", reads_all)
        section("reports", reports_all)
        section("search", search_all)
    return results


def memory_rows(m: dict[str, Any], add) -> None:
    """Real numbers against simulated ones (the baseline), per number of numbers."""
    simulated = {row["numbers"]: row for row in m.get("simulated", [])}

    def detail(row: dict[str, Any] | None) -> str:
        if row is None:
            return ""
        return (
            f"{row['worker_rss_mib']}/{row['worker_pss_mib']}, "
            f"{row['child_rss_mib']}/{row['child_pss_mib']}"
        )

    for key, label in (("real", "1 per child"), ("real_shared", "{k} per child")):
        for row in m.get(key, []):
            n, base = row["numbers"], simulated.get(row["numbers"])
            ours = row["per_number_pss_mib"]
            theirs = base["per_number_pss_mib"] if base else None
            add(
                f"memory, {n} real numbers ({label.format(k=row['per_process'])}): "
                "PSS per number, worker share incl. (MiB) vs simulated",
                ours,
                theirs,
                ratio(ours, theirs),
                "≤ 40 MiB" if n == 50 else "",
            )
            add(
                "  RSS/PSS (MiB): worker, child mean; worker share",
                f"{detail(row)}; {row['worker_share_mib']}",
                f"{detail(base)}; {base['worker_share_mib']}" if base else "",
                None,
            )


def table(r: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str, str, str]] = []

    def add(name: str, ours: Any, base: Any, rat: Any, target: str = "") -> None:
        rows.append((name, str(ours), str(base), "" if rat is None else f"{rat}×", target))

    if "fanout" in r:
        f = r["fanout"]
        sio = f.get("socketio") or {"skipped": "not run"}
        if "skipped" in sio:
            add(f"fan-out Socket.IO peer: skipped ({sio['skipped']})", "", "", None)
        else:
            for key, label in (("one", "1 web process"), ("two", "2 web processes, Redis")):
                for p, target in (("p50", "≤ 1.0×"), ("p95", "≤ 1.5×")):
                    a, b = f[key][f"all_{p}_ms"], sio[f"all_{p}_ms"]
                    add(
                        f"fan-out {f[key]['sockets']} sockets, {label}, {p} (ms) vs Socket.IO",
                        a,
                        b,
                        ratio(a, b),
                        target,
                    )
            for p in ("p50", "p95"):
                a, b = f["one_raw"][f"all_{p}_ms"], sio[f"all_{p}_ms"]
                add(f"fan-out floor (raw ASGI on daphne), {p} (ms) vs Socket.IO", a, b, ratio(a, b))
            if sio["frames_missing"]:
                add("  frames missing (Socket.IO)", sio["frames_missing"], "", None)
            for key, label in (
                ("one", "1 web process"),
                ("two", "2 web processes"),
                ("one_raw", "floor"),
            ):
                a, b = f[key].get("cpu_ms_per_event"), sio.get("cpu_ms_per_event")
                add(f"fan-out server CPU ms per event, {label} vs Socket.IO", a, b, ratio(a, b))
        for key, label in (("one", "1 web process"), ("two", "2 web processes")):
            first, p50 = f[key].get("first_event_ms"), f[key]["all_p50_ms"]
            add(
                f"fan-out first event after connecting, {label} (ms) vs its p50",
                first,
                p50,
                ratio(first, p50),
            )
        for key, label in (("one", "1 web process"), ("two", "2 web processes, Redis")):
            ours, raw = f[key], f[f"{key}_raw"]
            for p in ("p50", "p95"):
                a, b = ours[f"all_{p}_ms"], raw[f"all_{p}_ms"]
                add(
                    f"fan-out {ours['sockets']} sockets, {label}, {p} (ms) vs floor",
                    a,
                    b,
                    ratio(a, b),
                    "≤ 2×",
                )
            if ours["frames_missing"]:
                add(
                    f"  frames missing ({label})",
                    ours["frames_missing"],
                    raw["frames_missing"],
                    None,
                )
    if "ingest" in r:
        i = r["ingest"]
        sat, rb, rs = i["saturation"], i["raw_batched"], i["raw_single"]
        runs = len(i.get("saturation_runs", [])) or 1
        add(
            f"ingest saturation (msg/s, median of {runs}) vs raw batched",
            sat["per_second"],
            rb["per_second"],
            ratio(sat["per_second"], rb["per_second"]),
            "≥ 0.5×",
        )
        add(
            "ingest saturation (msg/s) vs raw 1 txn/msg",
            sat["per_second"],
            rs["per_second"],
            ratio(sat["per_second"], rs["per_second"]),
        )
        add("ingest saturation p50 / p99 (ms)", f"{sat['p50_ms']} / {sat['p99_ms']}", "", None)
        cpu, raw_cpu = sat.get("cpu_ms_per_message"), rb.get("cpu_ms_per_message")
        if cpu and raw_cpu:
            add(
                "  CPU ms/msg: worker+child / web / PostgreSQL (raw: client / PostgreSQL)",
                f"{cpu['worker']} / {cpu['web1']} / {cpu['postgres']}",
                f"{raw_cpu['client']} / {raw_cpu['postgres']}",
                None,
            )
        hook = i.get("webhook")
        if hook:
            dead, none = hook["dead_receiver"]["per_second"], hook["none"]["per_second"]
            live = hook.get("live_receiver", {}).get("per_second")
            if live:
                add(
                    "ingest with a dead webhook receiver (msg/s) vs a live one",
                    dead,
                    live,
                    ratio(dead, live),
                    "≥ 0.9×",
                )
                add(
                    "ingest with a live webhook receiver (msg/s) vs no webhook",
                    live,
                    none,
                    ratio(live, none),
                )
            add(
                "ingest with a dead webhook receiver (msg/s) vs no webhook",
                dead,
                none,
                ratio(dead, none),
            )
        light = i["light"]
        add(
            f"ingest light {light['rate']:.0f}/s p50 / p99 (ms)",
            f"{light['p50_ms']} / {light['p99_ms']}",
            "",
            None,
            "p99 ≤ 50 ms",
        )
    if "loadhold" in r:
        holding = [
            row["rate"]
            for row in r["loadhold"]
            if row["frames_missing"] == 0 and (row["p99_ms"] or 0) <= 250
        ]
        for row in r["loadhold"]:
            add(
                f"load hold {row['rate']:.0f} msg/s, {row['sockets']} sockets, 2 webs + 2 "
                "workers: p50 / p99 (ms), frames missing, resyncs",
                f"{row['p50_ms']} / {row['p99_ms']}, {row['frames_missing']}, {row['resyncs']}",
                "",
                None,
                "p99 ≤ 250, 0 missing" if row["rate"] == 100 else "",
            )
        add(
            "load hold: highest rate with p99 ≤ 250 ms and 0 missing",
            max(holding, default="none"),
            "",
            None,
        )
    if "reads" in r:
        for row in r["reads"]:
            q = row["queries"]
            for p in ("p50", "p95"):
                a, floor, raw = row[f"{p}_ms"], row[f"floor_{p}_ms"], row[f"raw_{p}_ms"]
                add(
                    f"{row['read']} {p} (ms) vs Django floor ({q} queries vs "
                    f"{row['floor_queries']})",
                    a,
                    floor,
                    ratio(a, floor),
                    "≤ 2×",
                )
                add(
                    f"{row['read']} {p} (ms) vs raw SQL ({q} queries vs {row['raw_queries']})",
                    a,
                    raw,
                    ratio(a, raw),
                )
                own = row[f"page_floor_{p}_ms"]
                add(
                    f"{row['read']} {p} (ms) vs Django floor on its own statements "
                    f"({q} queries vs {row['page_floor_queries']})",
                    a,
                    own,
                    ratio(a, own),
                )
    if "reports" in r:
        for row in r["reports"]:
            q = row["queries"]
            for p in ("p50", "p95"):
                a, raw = row[f"{p}_ms"], row[f"raw_{p}_ms"]
                add(
                    f"{row['read']} {p} (ms) vs raw SQL ({q} queries vs {row['raw_queries']})",
                    a,
                    raw,
                    ratio(a, raw),
                    "p50 ≤ 1000 ms" if p == "p50" else "",
                )
    if "search" in r:
        for row in r["search"]:
            for p in ("p50", "p95"):
                a, raw = row[f"{p}_ms"], row[f"raw_{p}_ms"]
                add(
                    f"search page, {row['search']} ({row['matches']} matches) {p} (ms) vs "
                    f"raw SQL ({row['queries']} queries vs {row['raw_queries']})",
                    a,
                    raw,
                    ratio(a, raw),
                    "≤ 2×, p50 ≤ 100 ms" if p == "p50" else "",
                )
    if "memory" in r:
        memory_rows(r["memory"], add)
    head = ("benchmark", "ours", "baseline", "ratio", "target")
    widths = [max(len(x[i]) for x in [head, *rows]) for i in range(5)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    return "\n".join(lines)


def main() -> None:
    k = knobs()
    started = time.monotonic()
    results = run(k)
    results["seconds"] = round(time.monotonic() - started, 1)
    out_dir = Path(__file__).resolve().parent / "results"
    out_dir.mkdir(exist_ok=True)
    path = out_dir / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    results["knobs"].pop("database_url", None)
    results["knobs"].pop("redis_url", None)
    path.write_text(json.dumps(results, indent=2, default=str))
    m = results["machine"]
    print(
        f"\nVB CRM benchmarks — {m['cores']} cores, {m['ram_gib']} GiB RAM, "
        f"Python {m['python']}; took {results['seconds']} s\n"
    )
    print(table(results))
    for name, error in results.get("errors", {}).items():
        print(f"\n{name} FAILED: {error.strip().splitlines()[-1]}")
    print(f"\n(details: {path.relative_to(infra.ROOT)})")


if __name__ == "__main__":
    main()
