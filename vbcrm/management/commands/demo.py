"""``manage.py demo``: the whole app on the WhatsApp simulator, a number linked, customers writing.

One command, no phone: the demo keeps its own data folder (``data/demo`` by default, never
the ``data/db.sqlite3`` of ``make run``), starts the simulator inside its own process, serves
the app with the worker embedded (as ``make run`` does) on the simulator gateway, makes a
``demo`` login that owns the number "Demo", links that number by scanning its QR code
through the simulator, and then has a few customers write now and then. Agents' replies get
their delivered and read receipts from the customers' phones.

The settings are read from the environment once, when Django starts; the demo's own
(data folder, gateway, simulator address) must be there before that. So the command,
started plainly, replaces itself (``exec``, same process id) with ``manage.py demo`` in that
environment, and that second start does the work.
"""

from __future__ import annotations

import os
import random
import secrets
import socket
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from whatsapp import services
from whatsapp.models import WhatsAppSession
from whatsapp.simulator import ControlClient, ControlError, run_in_thread

# Set in the environment of the second start (see the module docstring).
CHILD_MARK = "VBCRM_DEMO"
USERNAME = "demo"
NUMBER_NAME = "Demo"
PHONE = "5511999990000"


@dataclass(frozen=True)
class Customer:
    name: str
    phone: str


CUSTOMERS = [
    Customer("Ana Souza", "5511987650001"),
    Customer("João Pereira", "5521987650002"),
    Customer("Maria Oliveira", "5531987650003"),
    Customer("Carlos Lima", "5541987650004"),
    Customer("Beatriz Santos", "5551987650005"),
    Customer("Rafael Costa", "5561987650006"),
]
TEXTS = [
    "Oi, boa tarde! Vocês estão abertos hoje?",
    "Olá! Queria saber o preço da entrega para Campinas.",
    "Bom dia, meu pedido ainda não chegou. Podem verificar?",
    "Vocês aceitam Pix?",
    "Tem esse modelo no tamanho M?",
    "Qual é o horário de funcionamento no sábado?",
    "Consigo trocar um produto sem a nota fiscal?",
    "Oi! Vi a promoção no Instagram, ainda está valendo?",
    "Preciso de um orçamento para 20 unidades, é possível?",
    "Vocês fazem entrega no mesmo dia?",
    "Boa noite, o código de rastreio não funciona.",
    "Posso parcelar no cartão em quantas vezes?",
]
FOLLOW_UPS = [
    "Obrigado! 😊",
    "Perfeito, muito obrigada!",
    "Entendi. E o prazo de entrega?",
    "Combinado, vou fazer o pedido agora.",
    "Ótimo, valeu pela ajuda!",
]
CAPTIONS = [
    "Olha a foto do produto que chegou com defeito",
    "É este aqui que eu quero",
    "Segue o comprovante",
]
PLACES = [
    ("Av. Paulista, 1578 - São Paulo", -23.561414, -46.655881),
    ("Praça da Liberdade - Belo Horizonte", -19.932063, -43.938033),
    ("Mercado Municipal - Curitiba", -25.434780, -49.259740),
]


class Customers:
    """What the demo's customers say and when; the messages are control-API objects."""

    def __init__(self, to: str, rng: random.Random | None = None) -> None:
        self.to = to
        self.rng = rng or random.Random()
        self.answered: list[Customer] = []  # customers whose last message got a reply

    def next_message(self) -> dict[str, Any]:
        """Mostly text, an image now and then, sometimes a location; a customer who got a
        reply answers it first."""
        if self.answered:
            customer = self.answered.pop(0)
            return self._message(customer, text=self.rng.choice(FOLLOW_UPS))
        customer = self.rng.choice(CUSTOMERS)
        roll = self.rng.random()
        if roll < 0.15:
            return self._message(customer, kind="image", text=self.rng.choice(CAPTIONS))
        if roll < 0.25:
            name, latitude, longitude = self.rng.choice(PLACES)
            return self._message(
                customer,
                kind="location",
                latitude=latitude,
                longitude=longitude,
                location_name=name,
            )
        return self._message(customer, text=self.rng.choice(TEXTS))

    def _message(self, customer: Customer, **fields: Any) -> dict[str, Any]:
        return {"to": self.to, "from": customer.phone, "push_name": customer.name, **fields}

    def replied(self, to: str) -> Customer | None:
        """An agent's reply went to ``to`` (a JID or phone): that customer may answer it."""
        phone = to.split("@", 1)[0]
        customer = next((c for c in CUSTOMERS if c.phone == phone), None)
        if customer is not None and customer not in self.answered and self.rng.random() < 0.5:
            self.answered.append(customer)
        return customer


def describe(message: dict[str, Any]) -> str:
    """One line for the terminal: who wrote what."""
    kind = message.get("kind", "text")
    if kind == "image":
        body = f"[image] {message.get('text', '')}".strip()
    elif kind == "location":
        body = f"[location] {message['location_name']}"
    else:
        body = message["text"]
    return f"{message['push_name']}: {body}"


def ensure_demo_data(password_file: Path) -> tuple[Any, str, WhatsAppSession]:
    """The demo login and its number, made once and reused: ``(user, password, number)``.

    The password is drawn once and kept in ``password_file`` (only readable by its
    owner), so every run prints the same working login. A number that cannot run (logged
    out, or a pairing that expired) is asked to link again.
    """
    if password_file.exists():
        password = password_file.read_text().strip()
    else:
        password = secrets.token_urlsafe(9)
        password_file.parent.mkdir(parents=True, exist_ok=True)
        password_file.touch(mode=0o600)
        password_file.write_text(password)
    User = get_user_model()
    user, created = User.objects.get_or_create(username=USERNAME, defaults={"first_name": "Demo"})
    if created or not user.check_password(password):
        user.set_password(password)
        user.save()
    number = WhatsAppSession.objects.filter(owner=user, name=NUMBER_NAME).first()
    if number is None:
        number = services.session_create(owner=user, name=NUMBER_NAME)
    elif not WhatsAppSession.objects.filter(services.runnable_sessions_q(), pk=number.pk).exists():
        number = services.session_request_link(session=number)
    return user, password, number


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _check_port(host: str, port: int) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise CommandError(
                f"Cannot listen on {host}:{port} ({exc.strerror}). Is `make run` or another "
                "demo running? Pick another port with --port."
            ) from None


class Command(BaseCommand):
    help = (
        "Run VB CRM as a demo, no phone needed: the built-in WhatsApp simulator, a 'demo' "
        "login owning a linked number, and customers writing every few seconds. Its data "
        "lives in its own folder (data/demo), apart from `make run`'s. Ctrl-C stops it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="Address to bind (127.0.0.1).")
        parser.add_argument("--port", type=int, default=8000, help="Port of the app (8000).")
        parser.add_argument(
            "--sim-port",
            type=int,
            default=0,
            help="Port of the WhatsApp simulator (default: a free one).",
        )
        parser.add_argument(
            "--every",
            type=float,
            default=8.0,
            metavar="SECONDS",
            help="A customer writes about every SECONDS seconds (8); 0 = nobody writes.",
        )
        parser.add_argument(
            "--data-dir",
            default="",
            help="The demo's data folder (default: data/demo); delete it to start over.",
        )

    def handle(self, *args, host, port, sim_port, every, data_dir, **options) -> None:
        if every < 0:
            raise CommandError("--every cannot be negative.")
        data = (
            Path(data_dir).expanduser().resolve() if data_dir else settings.BASE_DIR / "data/demo"
        )
        if os.environ.get(CHILD_MARK) != "1":
            self._restart_in_demo_environment(host, port, sim_port, every, data)
        if settings.DATA_DIR != data or settings.WHATSAPP_GATEWAY != "simulator":
            raise CommandError(f"{CHILD_MARK}=1 is set, but the settings are not the demo's.")
        self._run(host, port, sim_port, every, data)

    def _restart_in_demo_environment(
        self, host: str, port: int, sim_port: int, every: float, data: Path
    ) -> None:
        _check_port(host, port)
        sim_port = sim_port or _free_port()
        env = {
            **os.environ,
            CHILD_MARK: "1",
            "VBCRM_DATA_DIR": str(data),
            "WHATSAPP_GATEWAY": "simulator",
            "WHATSAPP_SIMULATOR_URL": f"http://127.0.0.1:{sim_port}",
            # Embedded and self-contained whatever this shell or .env configure.
            "DJANGO_READ_DOT_ENV_FILE": "0",
            "DATABASE_URL": "",
            "REDIS_URL": "",
            "VBCRM_MEDIA_ROOT": "",
            "WHATSAPP_STORE_DIR": "",
            "WHATSAPP_STORE_DSN": "",
            "PYTHONUNBUFFERED": "1",
        }
        # The terminal tells the demo's story; the app's own logs only when something is wrong.
        env.setdefault("DJANGO_LOG_LEVEL", "WARNING")
        # A demo killed without its clean stop frees its number sooner on the next start.
        env.setdefault("WHATSAPP_LEASE_SECONDS", "10")
        argv = [sys.executable, str(settings.BASE_DIR / "manage.py"), "demo"]
        argv += ["--host", host, "--port", str(port), "--sim-port", str(sim_port)]
        argv += ["--every", str(every), "--data-dir", str(data)]
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, argv, env)  # noqa: S606 (this very command, new environment)

    def _run(self, host: str, port: int, sim_port: int, every: float, data: Path) -> None:
        self.stdout.write(f"Preparing the demo in {data} ...")
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        _user, password, number = ensure_demo_data(data / "demo_password")
        stop = threading.Event()
        app_url = f"http://{'127.0.0.1' if host in ('', '0.0.0.0') else host}:{port}"  # noqa: S104
        with run_in_thread(host="127.0.0.1", port=sim_port) as sim:
            story = Story(
                self,
                control=ControlClient(sim.url),
                app_url=app_url,
                sim_url=sim.url,
                number=number,
                password=password,
                every=every,
                data=data,
                stop=stop,
            )
            thread = threading.Thread(target=story.run, name="demo-customers", daemon=True)
            thread.start()
            try:
                # Blocks until Ctrl-C or SIGTERM; the worker lets its numbers go on the way out.
                call_command("serve", host=host, port=port, worker=True)
            finally:
                stop.set()
                thread.join(10)
        self.stdout.write("Demo stopped.")


class Story:
    """The demo's background thread: link the number, then the customers write."""

    def __init__(
        self,
        command: BaseCommand,
        *,
        control: ControlClient,
        app_url: str,
        sim_url: str,
        number: WhatsAppSession,
        password: str,
        every: float,
        data: Path,
        stop: threading.Event,
    ) -> None:
        self.command = command
        self.control = control
        self.app_url = app_url
        self.sim_url = sim_url
        self.account = str(number.pk)
        self.password = password
        self.every = every
        self.data = data
        self.stop = stop
        self.customers = Customers(PHONE)
        self.replies_seen = 0
        self.unread: list[str] = []  # replies delivered, to be read on the next second

    def say(self, line: str) -> None:
        self.command.stdout.write(f"{time.strftime('%H:%M:%S')}  {line}")

    def run(self) -> None:
        try:
            if not self._until(self._app_up, 60):
                return
            linked = self._until(self._link, 60)
            self._banner(linked)
            self._loop()
        except Exception as exc:  # the app keeps serving; say why the customers went quiet
            self.say(f"The demo's customers stopped: {exc!r}")

    def _until(self, step: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                if step():
                    return True
            except (OSError, ControlError):
                pass
            self.stop.wait(0.3)
        return False

    def _app_up(self) -> bool:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(self.app_url + "/login/", timeout=2) as response:  # noqa: S310 (loopback)
            return response.status == 200

    def _link(self) -> bool:
        """The demo phone scans the number's QR code; a number linked before resumes alone."""
        if any(n["phone"] == PHONE and n["connected"] for n in self.control.get("/api/numbers")):
            return True
        if any(q["account"] == self.account for q in self.control.get("/api/qr")):
            self.control.post(
                "/api/qr/scan", {"account": self.account, "phone": PHONE, "push_name": "Demo"}
            )
            self.say(
                f"The demo phone (+{PHONE}) scanned the QR code of the number {NUMBER_NAME!r}."
            )
        return False

    def _banner(self, linked: bool) -> None:
        bar = "=" * 64
        state = (
            f"The number {NUMBER_NAME!r} (+{PHONE}) is linked to the built-in WhatsApp simulator."
            if linked
            else f"The number {NUMBER_NAME!r} did not link within a minute; see the Numbers page."
        )
        customers = (
            f"A customer writes about every {self.every:g} s: answer in the inbox and watch "
            "the ticks turn blue as they read."
            if self.every
            else "No customer writes (--every 0)."
        )
        self.command.stdout.write(
            self.command.style.SUCCESS(
                f"{bar}\nVB CRM demo: open {self.app_url}/ and log in\n"
                f"  username: {USERNAME}\n  password: {self.password}\n{bar}"
            )
        )
        self.command.stdout.write(
            f"{state}\n{customers}\n"
            f'Simulator control API: {self.sim_url}/api/ (see README, "The simulator").\n'
            f"Data: {self.data} (delete it to start over). Ctrl-C stops the demo.\n"
        )

    def _loop(self) -> None:
        next_at = time.monotonic()
        while not self.stop.wait(1.0 if self.every else 2.0):
            try:
                self._receipts()
                if self.every and time.monotonic() >= next_at:
                    message = self.customers.next_message()
                    self.control.send_message(**message)
                    self.say(describe(message))
                    next_at = time.monotonic() + self.every * self.customers.rng.uniform(0.5, 1.5)
            except (OSError, ControlError) as exc:
                self.say(f"(the simulator did not answer: {exc})")

    def _receipts(self) -> None:
        """Replies are delivered as soon as seen, and read a second later."""
        if self.unread:
            self.control.post(
                "/api/receipts", {"phone": PHONE, "message_ids": self.unread, "status": "read"}
            )
            self.unread = []
        sent = self.control.sent(PHONE)
        new, self.replies_seen = sent[self.replies_seen :], len(sent)
        for reply in new:
            self.control.post(
                "/api/receipts",
                {"phone": PHONE, "message_ids": [reply["message_id"]], "status": "delivered"},
            )
            self.unread.append(reply["message_id"])
            customer = self.customers.replied(reply["to"])
            self.say(f"{customer.name if customer else reply['to']} got your reply.")
