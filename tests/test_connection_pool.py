"""On PostgreSQL, requests borrow their connection from the process's pool and hand it
back when they end, instead of opening one each."""

from __future__ import annotations

from wsgiref.util import setup_testing_defaults

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection


def served(handler: WSGIHandler, path: str) -> str:
    """One request through the handler a server uses: unlike the test Client, it ends
    the request's connection (the request_finished signal) as a served request does."""
    environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "HTTP_HOST": "127.0.0.1"}
    setup_testing_defaults(environ)
    status: list[str] = []
    response = handler(environ, lambda s, headers: status.append(s))
    b"".join(response)
    response.close()
    return status[0]


@pytest.mark.django_db(transaction=True)
def test_requests_hand_their_connection_back_to_the_pool(postgres_only):
    pool = connection.pool
    if pool is None:
        pytest.skip("DATABASE_POOL_MAX_SIZE=0 turns the pool off")
    handler = WSGIHandler()
    served(handler, "/api/whatsapp/health")  # the pool opens, if no test opened it yet
    opened = pool.get_stats().get("connections_num", 0)

    for _ in range(20):
        # the health check runs a query, so each request needs a connection
        assert served(handler, "/api/whatsapp/health").startswith("200")
        assert connection.connection is None  # handed back, not kept

    stats = pool.get_stats()
    assert stats.get("connections_num", 0) - opened <= 1  # not one per request
    assert stats["pool_available"] == stats["pool_size"]  # none is still lent out
