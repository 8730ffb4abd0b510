"""VB CRM's own Prometheus metrics, next to django-prometheus's request and database ones.

Counters count in the process that does the work: the worker for messages in
and out, the web process for the API. With several processes on one machine,
set PROMETHEUS_MULTIPROC_DIR (prometheus_client's own variable) to a shared
empty folder so /metrics adds them up; the gauges are then summed over the
live processes.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

MESSAGES_IN = Counter(
    "vbcrm_messages_in", "Messages received from WhatsApp and stored (replays not counted)."
)
MESSAGES_OUT = Counter("vbcrm_messages_out", "Replies WhatsApp accepted from us.")
SEND_FAILURES = Counter("vbcrm_send_failures", "Replies that failed for good (no more retries).")
CHILD_RESTARTS = Counter(
    "vbcrm_child_restarts", "WhatsApp client child processes restarted after they died."
)
CONNECTED_NUMBERS = Gauge(
    "vbcrm_connected_numbers",
    "Numbers this process holds with a live WhatsApp connection.",
    multiprocess_mode="livesum",
)
SOCKET_CLIENTS = Gauge(
    "vbcrm_socket_clients", "Browser sockets open on this process.", multiprocess_mode="livesum"
)
REALTIME_EVENTS_DROPPED = Counter(
    "vbcrm_realtime_events_dropped",
    "Live events the channel layer refused for longer than the sender retries (Redis down). "
    "Nothing stored is lost: the open pages that missed them catch up.",
)
REALTIME_GAPS = Counter(
    "vbcrm_realtime_gaps",
    "Times a web process found live events missing (a skipped number or its layer "
    "connection lost) and had the sockets concerned catch up.",
)
SOCKET_RESYNCS = Counter(
    "vbcrm_socket_resyncs", "Catch-up requests sent to open pages after missed live events."
)
