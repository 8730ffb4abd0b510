"""The contacts page: every contact of the numbers the user works, one contact's details
(name, notes, custom fields, conversations on every number), CSV import and export, and
the owner's custom field definitions."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from conversations import contact_selectors as selectors
from conversations.contacts_csv import contacts_csv_rows
from conversations.models import Contact, CustomField
from conversations.selectors import tag_list
from conversations.services import contact_import, contacts
from vbcrm.errors import error_items, first_error
from vbcrm.params import positive_int
from vbcrm.types import AuthedRequest
from whatsapp.models import WhatsAppSession
from whatsapp.selectors import session_get, session_list

logger = logging.getLogger(__name__)

PAGE_SIZE = 50


def _filters(request: AuthedRequest) -> selectors.ContactFilters:
    sort = request.GET.get("sort", "")
    return selectors.ContactFilters(
        search=request.GET.get("q", "")[:200],
        session_id=positive_int(request.GET.get("number")),
        tag_id=positive_int(request.GET.get("tag")),
        sort=sort if sort in selectors.SORTS else "recent",
    )


def _list_context(request: AuthedRequest) -> dict[str, Any]:
    filters = _filters(request)
    page = max(positive_int(request.GET.get("page")) or 1, 1)
    rows = selectors.contact_list(
        user=request.user, filters=filters, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE + 1
    )
    more_query = request.GET.copy()
    more_query["page"] = str(page + 1)
    return {
        "contacts": rows[:PAGE_SIZE],
        "filters": filters,
        "more_url": "?" + more_query.urlencode() if len(rows) > PAGE_SIZE else "",
        "page": page,
    }


def _page(request: AuthedRequest, extra: dict[str, Any], status: int = 200) -> HttpResponse:
    sessions = list(session_list(user=request.user).order_by("name"))
    context = {
        **_list_context(request),
        "sessions": sessions,
        "tags": tag_list(user=request.user),
        "max_import_kb": settings.VBCRM_CONTACT_IMPORT_MAX_BYTES // 1024,
        **extra,
    }
    return render(request, "conversations/contacts.html", context, status=status)


@login_required
@require_GET
def contact_list(request: AuthedRequest) -> HttpResponse:
    """The list, searched, filtered by number and sorted; to htmx, only the results."""
    if request.htmx and request.htmx.target == "contact-results":
        return render(request, "conversations/_contact_results.html", _list_context(request))
    return _page(request, {})


def _session_or_none(request: AuthedRequest, value: str | None) -> WhatsAppSession | None:
    session_id = positive_int(value)
    if session_id is None:
        return None
    try:
        return session_get(user=request.user, session_id=session_id)
    except WhatsAppSession.DoesNotExist:
        return None


@login_required
@require_POST
def contact_import_view(request: AuthedRequest) -> HttpResponse:
    """A CSV file into one of the user's numbers; the page answers with the report."""
    session = _session_or_none(request, request.POST.get("number"))
    upload = request.FILES.get("file")
    error = ""
    report = None
    if session is None:
        error = _("Pick the number the contacts write to.")
    elif upload is None:
        error = _("Choose a CSV file to import.")
    elif upload.size is not None and upload.size > settings.VBCRM_CONTACT_IMPORT_MAX_BYTES:
        # Refused before it is read into memory.
        error = _("The file is larger than %(n)s KB: split it and import the parts.") % {
            "n": settings.VBCRM_CONTACT_IMPORT_MAX_BYTES // 1024
        }
    else:
        try:
            report = contact_import.contacts_import(session=session, data=upload.read())
        except ValidationError as exc:
            error = first_error(exc)[1]
    extra = {
        "import_error": error,
        "report": report,
        "report_summary": contact_import.import_summary(report) if report else "",
        "import_session": session,
    }
    return _page(request, extra, status=400 if error else 200)


@login_required
@require_GET
def contact_export(request: AuthedRequest) -> StreamingHttpResponse:
    """One number's contacts as a CSV file (the columns the import reads)."""
    session = _session_or_none(request, request.GET.get("number"))
    if session is None:
        raise Http404
    response = StreamingHttpResponse(
        contacts_csv_rows(session=session), content_type="text/csv; charset=utf-8"
    )
    name = slugify(session.name) or f"number-{session.pk}"
    response["Content-Disposition"] = f'attachment; filename="contacts-{name}.csv"'
    logger.info("contacts exported session=%s user=%s", session.pk, request.user.pk)
    return response


def _contact_or_404(request: AuthedRequest, contact_id: int) -> Contact:
    try:
        return selectors.contact_get(user=request.user, contact_id=contact_id)
    except Contact.DoesNotExist:
        raise Http404 from None


@login_required
@require_http_methods(["GET", "POST"])
def contact_detail(request: AuthedRequest, contact_id: int) -> HttpResponse:
    """One contact: edit its name, notes and custom fields; its conversations."""
    contact = _contact_or_404(request, contact_id)
    fields = selectors.contact_fields(contact=contact)
    errors: dict[str, str] = {}
    if request.method == "POST":
        posted = {f: request.POST.get(f"field_{f.pk}", "") for f, _value in fields}
        try:
            contacts.contact_details_update(
                contact=contact,
                saved_name=request.POST.get("saved_name", ""),
                notes=request.POST.get("notes", ""),
                values=posted,
            )
        except ValidationError as exc:
            errors = {field or "": message for field, _code, message in error_items(exc)}
            # Show what was typed, with the errors beside it.
            fields = [(f, posted[f]) for f, _value in fields]
            contact.saved_name = request.POST.get("saved_name", "")
            contact.notes = request.POST.get("notes", "")
        else:
            messages.success(request, _("Contact saved."))
            return redirect("contacts:detail", contact.pk)
    rows = [
        {"field": f, "value": value, "error": errors.get(contacts.value_key(f), "")}
        for f, value in fields
    ]
    return render(
        request,
        "conversations/contact_detail.html",
        {
            "contact": contact,
            "fields": rows,
            "errors": errors,
            "conversations": selectors.contact_conversations(user=request.user, contact=contact),
        },
        status=400 if errors else 200,
    )


# --- Custom field definitions -------------------------------------------------------------


def _choices(text: str) -> list[str]:
    return [line for line in (text or "").splitlines() if line.strip()]


@login_required
@require_http_methods(["GET", "POST"])
def custom_fields(request: AuthedRequest) -> HttpResponse:
    """The fields the user adds to the contacts of the numbers they own."""
    form_errors: dict[str, str] = {}
    values = {"name": "", "kind": CustomField.Kind.TEXT, "choices": ""}
    if request.method == "POST":
        values = {k: request.POST.get(k, "") for k in values}
        try:
            field = contacts.custom_field_create(
                owner=request.user,
                name=values["name"],
                kind=values["kind"],
                choices=_choices(values["choices"]),
            )
        except ValidationError as exc:
            form_errors = {f or "name": message for f, _code, message in error_items(exc)}
        else:
            messages.success(request, _("Field “%(name)s” added.") % {"name": field.name})
            return redirect("contacts:fields")
    return render(
        request,
        "conversations/custom_fields.html",
        {
            "custom_fields": selectors.custom_field_list(owner_id=request.user.pk),
            "kinds": CustomField.Kind.choices,
            "form_errors": form_errors,
            "values": values,
        },
        status=400 if form_errors else 200,
    )


def _field_or_404(request: AuthedRequest, field_id: int) -> CustomField:
    try:
        return selectors.custom_field_get(owner_id=request.user.pk, field_id=field_id)
    except CustomField.DoesNotExist:
        raise Http404 from None


@login_required
@require_POST
def custom_field_edit(request: AuthedRequest, field_id: int) -> HttpResponse:
    field = _field_or_404(request, field_id)
    try:
        contacts.custom_field_save(
            field=field,
            name=request.POST.get("name", ""),
            kind=request.POST.get("kind", ""),
            choices=_choices(request.POST.get("choices", "")),
        )
    except ValidationError as exc:
        messages.error(request, first_error(exc)[1])
    else:
        messages.success(request, _("Field “%(name)s” saved.") % {"name": field.name})
    return redirect("contacts:fields")


@login_required
@require_POST
def custom_field_delete(request: AuthedRequest, field_id: int) -> HttpResponse:
    field = _field_or_404(request, field_id)
    contacts.custom_field_delete(field=field)
    messages.success(request, _("Field “%(name)s” deleted.") % {"name": field.name})
    return redirect("contacts:fields")
