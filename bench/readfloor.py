"""The reads' Django floor: the least a Django view can do for each read.

A URLconf for the bench process only (``bench.reads.measure`` switches ROOT_URLCONF to
it): the product's URLs, plus ``/bench-floor/<read>/``, a view behind the same
middleware and the same login check that runs the read's raw SQL (which applies the
access rule itself) and answers the rows as JSON. No ORM, no template, no schema.
``/bench-floor/<read>/page/`` does the same with the statements our view ran.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.http import Http404, HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.http import require_GET

from bench.reads import RAW_SQL


@login_required
@require_GET
def floor(request: HttpRequest, read: str) -> JsonResponse:
    statements = RAW_SQL.get(read)
    if statements is None:
        raise Http404
    params = {"user": request.user.pk, "conv": int(request.GET.get("conv") or 0)}
    results = []
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql, params)
            results.append(cursor.fetchall())
    return JsonResponse({"results": results}, encoder=DjangoJSONEncoder)


# A read's statements as its view ran them (SQL and bound parameters), set by
# ``bench.reads.measure`` before it times ``page_floor``.
PAGE_STATEMENTS: dict[str, list[tuple[str, object]]] = {}


@login_required
@require_GET
def page_floor(request: HttpRequest, read: str) -> JsonResponse:
    """The statements our view ran for ``read``, run again as they were and answered as
    JSON: the least a view can do for the page's own data."""
    statements = PAGE_STATEMENTS.get(read)
    if statements is None:
        raise Http404
    results = []
    with connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)
            results.append(cursor.fetchall())
    return JsonResponse({"results": results}, encoder=DjangoJSONEncoder)


urlpatterns = [
    path("bench-floor/<slug:read>/", floor, name="bench_floor"),
    path("bench-floor/<slug:read>/page/", page_floor, name="bench_page_floor"),
    path("", include("vbcrm.urls")),
]
