"""VB CRM settings: the only module that reads the environment.

Every variable is listed with its meaning in ``.env.example``. With nothing
set, VB CRM runs embedded: SQLite and media under ``data/``, the in-memory
channel layer, and a secret key generated once into ``data/secret_key``. A
``sqlite:///`` DATABASE_URL runs embedded too, on that file.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import environ
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# The process environment wins over the file: read_env never overwrites.
if (BASE_DIR / ".env").is_file() and env.bool("DJANGO_READ_DOT_ENV_FILE", default=True):
    environ.Env.read_env(BASE_DIR / ".env")


def _path(name: str, default: Path) -> Path:
    """A folder from the environment; unset or empty means ``default``."""
    value = env.str(name, default="")
    return Path(value).expanduser().resolve() if value else default


DATA_DIR = _path("VBCRM_DATA_DIR", BASE_DIR / "data")
DEBUG = env.bool("DJANGO_DEBUG", default=False)

# --- Database ---------------------------------------------------------------
_SQLITE = "django.db.backends.sqlite3"
if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db("DATABASE_URL")}
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {"default": {"ENGINE": _SQLITE, "NAME": DATA_DIR / "db.sqlite3"}}
_db = DATABASES["default"]
# SQLite (the default, or a sqlite:// URL) is one machine: the embedded mode.
EMBEDDED = _db["ENGINE"] == _SQLITE
if EMBEDDED and str(_db["NAME"]) not in ("", ":memory:"):
    _db["OPTIONS"] = {
        # WAL lets pages read while the worker writes; IMMEDIATE takes the write lock at
        # BEGIN, so two writers queue instead of deadlocking. Options in the URL win.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        **_db.get("OPTIONS", {}),
    }
    # A file, not shared-cache memory: the worker writes from its own thread while
    # pages (and tests) read, which shared-cache SQLite refuses.
    _db["TEST"] = {"NAME": Path(tempfile.gettempdir()) / f"vbcrm-test-{os.getpid()}.sqlite3"}
elif not EMBEDDED:
    # One test database per test run, so runs side by side never clobber each other.
    _db["TEST"] = {"NAME": f"test_{_db['NAME']}_{os.getpid()}"}
_POSTGRES = _db["ENGINE"].endswith(("postgresql", "postgis"))
if _db["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend, reading timestamps with psycopg's C code (vbcrm/db/base.py).
    _db["ENGINE"] = "vbcrm.db"
if _POSTGRES:
    # Async views and consumers must not keep connections across requests. Each request
    # (and each database hop of a socket) borrows one from this process's pool instead:
    # opening a PostgreSQL connection (about 10 ms on loopback) takes longer than a whole
    # API read.
    _db["CONN_MAX_AGE"] = 0
    # A pooled connection is checked (one round trip) before it is lent, so one dropped by
    # a database restart is replaced instead of failing the request that gets it.
    _db["CONN_HEALTH_CHECKS"] = True
    _pool_min = env.int("DATABASE_POOL_MIN_SIZE", default=2)
    _pool_max = env.int("DATABASE_POOL_MAX_SIZE", default=20)
    if _pool_max > 0:
        if not 0 <= _pool_min <= _pool_max:
            raise ImproperlyConfigured(
                "DATABASE_POOL_MIN_SIZE must be between 0 and DATABASE_POOL_MAX_SIZE."
            )
        _db.setdefault("OPTIONS", {})["pool"] = {"min_size": _pool_min, "max_size": _pool_max}
    # The server binds the parameters and psycopg prepares a statement it has run five
    # times on a connection: the page's short reads then skip PostgreSQL's planning
    # (vbcrm/db/plans.py). Off for a pooler in transaction mode (PgBouncer's), which
    # cannot keep a statement prepared on one of its connections for the next client.
    if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
        _db.setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


# --- Secret key -------------------------------------------------------------
def _embedded_secret_key() -> str:
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(64))
    return path.read_text().strip()


SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not EMBEDDED:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set with a database server in DATABASE_URL: every web "
            "process and worker of a deployment has to share it. Generate one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(64))'"
        )
    SECRET_KEY = _embedded_secret_key()

# --- HTTP and security --------------------------------------------------------
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=[]) or ["127.0.0.1", "localhost"]
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=SECURE_SSL_REDIRECT)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=SECURE_SSL_REDIRECT)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
if env.bool("DJANGO_BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Content-Security-Policy (django-csp): scripts, styles, fonts and fetches from this site
# only, nothing inline without the request's nonce ({{ request.csp_nonce }}), no plugins,
# no framing. connect-src also gets the page's own ws:/wss: origin for the socket at /ws/
# (vbcrm.middleware.ContentSecurityPolicyMiddleware). data: images are the numbers page's
# QR codes; blob: images and media preview a file before it is sent. manifest-src: the web
# app manifest (/manifest.webmanifest), this site's own.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "img-src": [SELF, "data:", "blob:"],
        "media-src": [SELF, "blob:"],
        "connect-src": [SELF],
        "manifest-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
SESSION_COOKIE_AGE = env.int("DJANGO_SESSION_COOKIE_AGE", default=60 * 60 * 24 * 14)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    # ninja: the REST API's docs page assets (served locally, no CDN)
    "ninja",
    "django_prometheus",
    # login throttling: failed attempts by account and address, lockouts (see "Logins" below)
    "axes",
    "vbcrm",
    "whatsapp",
    "conversations",
    "realtime",
]

MIDDLEWARE = [
    # First and last, so request metrics time the whole middleware stack.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every answer (CONTENT_SECURITY_POLICY below).
    "vbcrm.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Above ApiMiddleware (sync only), so it runs sync too: axes' async path does not hand
    # the page's own answer to AXES_LOCKOUT_CALLABLE.
    "axes.middleware.AxesMiddleware",
    "vbcrm.middleware.ApiMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "vbcrm.urls"
ASGI_APPLICATION = "vbcrm.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
    # The inbox's templates and the layout's top bar (conversations/jinja2/): see
    # conversations/jinja.py. Asked second, so only for the templates it alone has.
    {
        "NAME": "fragments",
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"environment": "conversations.jinja.environment"},
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The axes backend first: it refuses a locked-out account or address before the password
# is checked, and counts every failure (django.contrib.auth's user_login_failed signal).
# Then ours (Django's, its user read with their presence: vbcrm/auth.py), and Django's
# own, for the sessions it logged in before ours was listed.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "vbcrm.auth.UserBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "inbox"
LOGOUT_REDIRECT_URL = "login"

# --- Logins: throttling (django-axes) -------------------------------------------------
# Failed logins (login page, admin, password change) are counted by account and by client
# address, each on its own; at VBCRM_LOGIN_FAILURE_LIMIT failures within the lockout time
# that account, or that address, is refused (429) for VBCRM_LOGIN_LOCKOUT_MINUTES after its
# last failure. 0 minutes: locked until an admin unlocks it (README, "Security notes").
AXES_ENABLED = True
AXES_FAILURE_LIMIT = env.int("VBCRM_LOGIN_FAILURE_LIMIT", default=5)
if AXES_FAILURE_LIMIT < 1:
    raise ImproperlyConfigured("VBCRM_LOGIN_FAILURE_LIMIT must be 1 or more.")
_lockout_minutes = env.int("VBCRM_LOGIN_LOCKOUT_MINUTES", default=15)
AXES_COOLOFF_TIME = timedelta(minutes=_lockout_minutes) if _lockout_minutes > 0 else None
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# Proxies in front of the app that append the client's address to X-Forwarded-For. 0: the
# connection's own address, and X-Forwarded-For is never read (a client could write it).
VBCRM_TRUSTED_PROXY_COUNT = env.int("VBCRM_TRUSTED_PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "vbcrm.throttle.client_ip"
AXES_LOCKOUT_CALLABLE = "vbcrm.throttle.lockout_response"
# A success does not wipe the failures: someone with an account of their own could
# otherwise clear their address's count between guesses at another account.
AXES_RESET_ON_SUCCESS = False
# Keep failed attempts only: a row per successful login would grow without end.
AXES_DISABLE_ACCESS_LOG = True
# No banner in the log at every start of every command.
AXES_VERBOSE = False

# --- Language and time ---------------------------------------------------------
LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="") or "pt-br"
LANGUAGES = [("pt-br", _("Portuguese (Brazil)")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="") or "America/Sao_Paulo"
USE_I18N = True
USE_TZ = True

# --- Static and media files ---------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = _path("VBCRM_MEDIA_ROOT", DATA_DIR / "media")
# Media is never served from a public URL: see conversations.views.media.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
VBCRM_MAX_UPLOAD_BYTES = env.int("VBCRM_MAX_UPLOAD_BYTES", default=16 * 1024 * 1024)
# Messages one user may send per minute (page, socket and API together); 0 turns the limit off.
VBCRM_SEND_RATE_PER_MINUTE = env.int("VBCRM_SEND_RATE_PER_MINUTE", default=60)
# An available agent whose last inbox tab closed this long ago goes away (no more
# automatic assignments until they say they are available again).
VBCRM_AWAY_AFTER_SECONDS = env.int("VBCRM_AWAY_AFTER_SECONDS", default=300)
# Live frames framed once and written straight to daphne's sockets (realtime.wire), in
# order behind whatever a socket still has queued; off: every frame goes through Channels'
# send(), at about twice the web process's CPU per event.
VBCRM_SOCKET_DIRECT_WRITES = env.bool("VBCRM_SOCKET_DIRECT_WRITES", default=True)
# Country calling code (digits, e.g. 55) for phones typed without one when starting a
# conversation; empty: every phone must carry its own (+55 11 ...).
VBCRM_DEFAULT_COUNTRY_CODE = env.str("VBCRM_DEFAULT_COUNTRY_CODE", default="").lstrip("+")
# Largest CSV file of contacts the contacts page imports, in bytes.
VBCRM_CONTACT_IMPORT_MAX_BYTES = env.int("VBCRM_CONTACT_IMPORT_MAX_BYTES", default=2 * 1024 * 1024)
# How long starting a conversation waits for the number's worker to look the phone up.
VBCRM_PHONE_LOOKUP_SECONDS = env.float("VBCRM_PHONE_LOOKUP_SECONDS", default=15.0)
# A reply still waiting for its number (disconnected, logged out, no worker) after this many
# hours is marked failed, with the reason and a Retry button.
VBCRM_OUTBOX_EXPIRY_HOURS = env.int("VBCRM_OUTBOX_EXPIRY_HOURS", default=24)
# Outgoing webhooks: endpoints on loopback, private, link-local or metadata addresses are
# refused unless this is on (tests, on-premise installs that post to their own network).
VBCRM_WEBHOOKS_ALLOW_PRIVATE = env.bool("VBCRM_WEBHOOKS_ALLOW_PRIVATE", default=False)
# How long a delivery may take (connect + answer), and for how many hours a failing
# delivery is retried (backoff with jitter) before it is marked failed.
VBCRM_WEBHOOK_TIMEOUT_SECONDS = env.float("VBCRM_WEBHOOK_TIMEOUT_SECONDS", default=10.0)
VBCRM_WEBHOOK_RETRY_HOURS = env.float("VBCRM_WEBHOOK_RETRY_HOURS", default=24.0)
# Web push (agents' notifications with every tab closed): the VAPID key pair (base64url,
# as `vapid --gen` / the keys file prints them); empty = generated once into
# DATA_DIR/vapid_private.pem. The subject is a contact push services may write to.
VBCRM_VAPID_PRIVATE_KEY = env.str("VBCRM_VAPID_PRIVATE_KEY", default="")
VBCRM_VAPID_SUBJECT = env.str("VBCRM_VAPID_SUBJECT", default="mailto:admin@localhost")
# Whether a message in an unassigned conversation notifies every agent of its number.
VBCRM_PUSH_UNASSIGNED = env.bool("VBCRM_PUSH_UNASSIGNED", default=True)
# Bearer token Prometheus must send to read /metrics; empty = /metrics answers 404.
VBCRM_METRICS_TOKEN = env.str("VBCRM_METRICS_TOKEN", default="")

# --- Channels -------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
CHANNEL_LAYERS: dict[str, dict[str, Any]]
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 changed two defaults that break channels-redis: the pool
                # refuses (rather than waits) past 100 connections, so a burst of
                # reconnecting sockets (each joins its groups at once) failed; and reads
                # time out after 5 s, exactly the layer's blocking-receive time, so an
                # idle socket's receive died every 5 s and took the socket with it.
                "hosts": [{"address": REDIS_URL, "max_connections": 2000, "socket_timeout": 30}],
                "capacity": 1500,
                "expiry": 30,
            },
        },
        # Live page events (realtime.events): Redis pub/sub. One PUBLISH per event and a
        # push stream into each web process, where the default layer costs every event
        # a blocking read and a clean-up round trip in series (web processes fell seconds
        # behind at 100 messages/s). Pub/sub delivers at most once, like the default
        # layer: the socket hub finds what was lost and has the pages catch up. Channel
        # names are global to a Redis server, not per database: the prefix keeps
        # deployments on other databases of one server apart.
        "broadcast": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [{"address": REDIS_URL}],
                "prefix": f"vbcrm-db{(urlsplit(REDIS_URL).path.strip('/') or '0')}:",
            },
        },
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# The cache holds the API's send rate counters: shared through Redis when processes are
# several, per process otherwise (one process serves everything in the embedded mode).
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "vbcrm",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- WhatsApp -------------------------------------------------------------------
VBCRM_MAX_NUMBERS_PER_OWNER = env.int("VBCRM_MAX_NUMBERS_PER_OWNER", default=5)
WHATSAPP_GATEWAY = env.str("WHATSAPP_GATEWAY", default="") or "neonize"
WHATSAPP_SIMULATOR_URL = env.str("WHATSAPP_SIMULATOR_URL", default="http://127.0.0.1:7071")
# Device keys of the linked numbers (one SQLite file per number in embedded mode).
WHATSAPP_STORE_DIR = _path("WHATSAPP_STORE_DIR", DATA_DIR / "whatsapp")
# With PostgreSQL, a DSN for the device store (each number gets its own schema).
WHATSAPP_STORE_DSN = env.str("WHATSAPP_STORE_DSN", default="")
# Run the worker inside the web process (the embedded mode of `make run`).
WHATSAPP_EMBEDDED_WORKER = env.bool("WHATSAPP_EMBEDDED_WORKER", default=False)
WHATSAPP_LEASE_SECONDS = env.int("WHATSAPP_LEASE_SECONDS", default=30)
WHATSAPP_SILENCE_SECONDS = env.int("WHATSAPP_SILENCE_SECONDS", default=90)
# An unlinked number runs a client (and rotates QR codes) only this long after someone asked
# to link it; after that it waits for the next request.
WHATSAPP_LINK_WINDOW_SECONDS = env.int("WHATSAPP_LINK_WINDOW_SECONDS", default=600)
# Start the worker even when linked numbers' device keys are not where it looks (another
# WHATSAPP_GATEWAY, a missing store): those numbers are logged out and must be linked again.
WHATSAPP_IGNORE_STORE_CHECK = env.bool("WHATSAPP_IGNORE_STORE_CHECK", default=False)

# Numbers hosted by one WhatsApp child process. 1 (the default): a process of its own for each
# number, so a crash touches that number only. K > 1: K numbers share a process and its fixed
# cost (interpreter, library, Go runtime), and a crash restarts those K together.
WHATSAPP_NUMBERS_PER_PROCESS = env.int("WHATSAPP_NUMBERS_PER_PROCESS", default=1)
if WHATSAPP_NUMBERS_PER_PROCESS < 1:
    raise ImproperlyConfigured("WHATSAPP_NUMBERS_PER_PROCESS must be 1 or more.")

# --- Logging --------------------------------------------------------------------
LOG_LEVEL = env.str("DJANGO_LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"level": "INFO"},
        # daphne logs every request at INFO through its access logger
        "daphne": {"level": "WARNING"},
        # the PostgreSQL pool logs every connection it lends and takes back at INFO
        "psycopg.pool": {"level": "WARNING"},
        # httpx logs every webhook request with its URL (which may carry a token) at INFO
        "httpx": {"level": "WARNING"},
    },
}
