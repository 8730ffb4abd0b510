"""Benchmark 2, ingest: messages from the simulator, through the worker, into PostgreSQL
and out to a socket. Light load (a steady rate) and saturation (everything at once).

Baseline: raw psycopg storing the same rows (the message insert plus the conversation's
counters and preview) with one transaction per message, and batched, on the same server.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid

from bench.common import SocketClients, marker, ms, pct, send, socket_specs, wait_messages
from bench.infra import Stack, children_of, cpu_seconds, postgres_pids


def _contacts(count: int) -> list[str]:
    return [f"55219{i:08d}" for i in range(count)]


def warm_up(s: Stack, phone: str, contacts: int) -> None:
    """First message of each contact: contacts and conversations exist before timing."""
    from conversations.models import Message

    before = Message.objects.count()
    send(
        s,
        [{"to": phone, "from": c, "push_name": "Bench", "text": "hi"} for c in _contacts(contacts)],
    )
    wait_messages(before + contacts)


def _latencies(result: dict) -> tuple[list[float], float, float]:
    rows = result["events"].values()
    lat = [row[2] - row[0] for row in rows]
    start = min(row[0] for row in rows)
    end = max(row[2] for row in rows)
    return lat, start, end


def run_light(
    s: Stack, port: int, cookie: str, phone: str, contacts: int, rate: float, seconds: float
) -> dict:
    count = int(rate * seconds)
    clients = SocketClients(s, socket_specs(port, [cookie], 1), count)
    clients.ready()
    time.sleep(0.5)
    who = _contacts(contacts)
    start = time.time()
    for i in range(count):
        due = start + i / rate
        time.sleep(max(0.0, due - time.time()))
        t0 = time.time()
        send(s, {"to": phone, "from": who[i % contacts], "text": marker(i, t0)})
    result = clients.results(timeout=60)
    lat, first, last = _latencies(result)
    return {
        "messages": count,
        "received": len(lat),
        "rate": rate,
        "p50_ms": ms(pct(lat, 50)),
        "p99_ms": ms(pct(lat, 99)),
        "max_ms": ms(max(lat) if lat else None),
    }


def run_saturation(
    s: Stack, port: int, cookie: str, phone: str, contacts: int, count: int, batch: int = 250
) -> dict:
    from conversations.models import Message

    stored_before = Message.objects.count()
    clients = SocketClients(s, socket_specs(port, [cookie], 1), count)
    clients.ready()
    time.sleep(0.5)
    who = _contacts(contacts)
    cpu_before = _cpu(s)
    inject_start = time.time()
    for offset in range(0, count, batch):
        t0 = time.time()
        send(
            s,
            [
                {"to": phone, "from": who[i % contacts], "text": marker(i, t0)}
                for i in range(offset, min(count, offset + batch))
            ],
        )
    inject_end = time.time()
    result = clients.results(timeout=300)
    cpu = {name: used - cpu_before.get(name, 0.0) for name, used in _cpu(s).items()}
    lat, first, last = _latencies(result)
    stored = Message.objects.count() - stored_before
    return {
        "messages": count,
        "received": len(lat),
        "stored": stored,
        "seconds": round(last - first, 2),
        # how long handing them to the simulator took: far below "seconds", or the
        # load generator, not the system, sets the pace
        "inject_seconds": round(inject_end - inject_start, 2),
        "per_second": round(len(lat) / (last - first), 1) if last > first else None,
        "p50_ms": ms(pct(lat, 50)),
        "p99_ms": ms(pct(lat, 99)),
        # where the work went: CPU milliseconds per message, by process
        "cpu_ms_per_message": {name: round(1000 * used / count, 3) for name, used in cpu.items()},
    }


class _LiveReceiver:
    """A webhook receiver on loopback that answers every delivery at once (200)."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def run_dead_receiver(
    s: Stack, port: int, cookie: str, phone: str, contacts: int, count: int, owner, number
) -> dict:
    """Saturation with no webhook, then with one whose receiver answers at once, then
    with one whose receiver accepts connections and never answers (every delivery waits
    for its timeout). A dead receiver must not slow ingest against a live one; against no
    webhook at all, the difference is what a webhook costs ingest (its outbox rows)."""
    from django.conf import settings

    from conversations.models import WebhookDelivery
    from conversations.services import webhooks

    settings.VBCRM_WEBHOOKS_ALLOW_PRIVATE = True
    none = run_saturation(s, port, cookie, phone, contacts, count)

    def with_endpoint(url: str) -> tuple[dict, int]:
        endpoint = webhooks.webhook_endpoint_create(
            owner=owner, url=url, events=["message.received"], sessions=[number]
        )
        try:
            time.sleep(6)  # the worker notices new endpoints within a few seconds
            result = run_saturation(s, port, cookie, phone, contacts, count)
            return result, WebhookDelivery.objects.filter(endpoint=endpoint).count()
        finally:
            webhooks.webhook_endpoint_delete(endpoint=endpoint)

    live = _LiveReceiver()
    try:
        with_live, _written = with_endpoint(f"http://127.0.0.1:{live.port}/hook")
    finally:
        live.close()
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead.listen(1)
    try:
        with_dead, written = with_endpoint(f"http://127.0.0.1:{dead.getsockname()[1]}/hook")
    finally:
        dead.close()
    return {
        "none": none,
        "live_receiver": with_live,
        "dead_receiver": with_dead,
        "deliveries_written": written,
    }


def _cpu(s: Stack) -> dict[str, float]:
    """CPU seconds used so far by each of our processes (the worker with its
    numbers' children), the simulator and the PostgreSQL server."""
    used = {}
    for proc in s.procs:
        if proc.name in ("worker", "web1", "simulator"):
            pids = [proc.pid, *children_of(proc.pid)] if proc.name == "worker" else [proc.pid]
            used[proc.name] = cpu_seconds(pids)
    used["postgres"] = cpu_seconds(postgres_pids())
    return used


_INSERT = """
INSERT INTO whatsapp_mensagens (
    conversation_id, wa_id, direction, kind, body, sender_jid, sender_name, media,
    media_status, mime_type, file_name, location_name, status, error, wa_timestamp,
    created_at, updated_at, quoted_wa_id, attempts, in_flight, receipt_pending, client_key,
    automatic, auto_reason, media_link
) VALUES (%s, %s, 'CLIENTE', 'text', %s, '', '', '', '', '', '', '', 'received', '', now(),
          now(), now(), '', 0, false, false, '', false, '', '')
RETURNING id
"""
_TOUCH = """
UPDATE whatsapp_atendimentos
   SET last_message_at = now(), last_message_preview = %s,
       unread_count = unread_count + 1, updated_at = now()
 WHERE id = %s
"""


def run_raw(database_url: str, count: int, batch: int) -> dict:
    """Same rows as message_receive writes for a known contact: one INSERT and one
    UPDATE per message, committed every ``batch`` messages (1 = one per message)."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        conv_ids = [r[0] for r in conn.execute("SELECT id FROM whatsapp_atendimentos").fetchall()]
        conn.commit()
        tag = uuid.uuid4().hex[:8]
        pg_before, own_before = cpu_seconds(postgres_pids()), time.process_time()
        start = time.perf_counter()
        with conn.cursor() as cur:
            for i in range(count):
                conv = conv_ids[i % len(conv_ids)]
                text = f"raw {i}"
                cur.execute(_INSERT, (conv, f"RAW{tag}{i}", text))
                cur.fetchone()
                cur.execute(_TOUCH, (text, conv))
                if (i + 1) % batch == 0:
                    conn.commit()
            conn.commit()
        took = time.perf_counter() - start
        pg, own = cpu_seconds(postgres_pids()) - pg_before, time.process_time() - own_before
    return {
        "messages": count,
        "batch": batch,
        "per_second": round(count / took, 1),
        "cpu_ms_per_message": {
            "client": round(1000 * own / count, 3),
            "postgres": round(1000 * pg / count, 3),
        },
    }
