"""``manage.py demo``'s pieces: the demo data made once, the customers' messages.

The whole command, in a browser, is in tests/ui/test_demo.py.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest
from django.contrib.auth import get_user_model

from vbcrm.management.commands.demo import (
    CUSTOMERS,
    NUMBER_NAME,
    PHONE,
    USERNAME,
    Customers,
    describe,
    ensure_demo_data,
)
from whatsapp import services
from whatsapp.models import WhatsAppSession

pytestmark = pytest.mark.django_db


def test_setup_twice_gives_one_login_and_one_number_with_the_same_password(tmp_path):
    password_file = tmp_path / "demo" / "demo_password"
    user, password, number = ensure_demo_data(password_file)
    again_user, again_password, again_number = ensure_demo_data(password_file)

    assert (again_user.pk, again_password, again_number.pk) == (user.pk, password, number.pk)
    assert get_user_model().objects.filter(username=USERNAME).count() == 1
    assert WhatsAppSession.objects.filter(owner=user).count() == 1
    assert number.name == NUMBER_NAME
    assert number.status == WhatsAppSession.Status.NEW
    user.refresh_from_db()
    assert user.check_password(password)
    assert not user.is_superuser
    assert password_file.stat().st_mode & 0o077 == 0  # only its owner reads it


def test_setup_restores_a_changed_password_and_relinks_a_logged_out_number(tmp_path):
    password_file = tmp_path / "demo_password"
    user, password, number = ensure_demo_data(password_file)
    user.set_password("changed")
    user.save()
    services.session_request_logout(session=number)

    user, _, number = ensure_demo_data(password_file)

    assert user.check_password(password)
    assert number.status == WhatsAppSession.Status.NEW


def test_customers_write_text_images_and_locations_to_the_demo_number():
    customers = Customers(PHONE, random.Random(7))
    messages = [customers.next_message() for _ in range(200)]

    kinds = Counter(m.get("kind", "text") for m in messages)
    assert set(kinds) == {"text", "image", "location"}
    assert kinds["text"] > kinds["image"] + kinds["location"]
    phones = {c.phone for c in CUSTOMERS}
    assert all(m["to"] == PHONE and m["from"] in phones and m["push_name"] for m in messages)
    assert all(m["latitude"] and m["longitude"] for m in messages if m.get("kind") == "location")
    assert all(describe(m).startswith(m["push_name"] + ": ") for m in messages)


def test_a_customer_who_got_a_reply_may_answer_it_next():
    customers = Customers(PHONE, random.Random(1))
    ana = CUSTOMERS[0]
    answered = [customers.replied(f"{ana.phone}@s.whatsapp.net") for _ in range(10)]

    assert answered[0] == ana
    assert customers.answered == [ana]  # once, however many replies she got
    follow_up = customers.next_message()
    assert (follow_up["from"], follow_up.get("kind", "text")) == (ana.phone, "text")
    assert customers.answered == []
    assert customers.replied("5500000000000@s.whatsapp.net") is None
