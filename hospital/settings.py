"""Settings for the outpatient platform: one file, every deploy-time knob from the environment.

Each value is read through a small typed helper that raises ``ImproperlyConfigured`` on a bad value, so a
typo in production stops the process at start instead of misbehaving later. ``DEBUG`` is off and the secrets
are required unless the dev runner (``make run`` / ``make test``) sets them. The table of variables is in
README.md.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
import django_stubs_ext
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

# Lets admin.ModelAdmin[Model] and QuerySet[Model] be written for the type checker at run time.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_MISSING = object()


def env_str(name: str, default: str | object | None = _MISSING) -> str:
    """Return the variable ``name``; raise if it is unset and no default is given.

    >>> env_str("HOSPITAL_DOCTEST_UNSET", default="fallback")
    'fallback'
    """
    value = os.environ.get(name)
    if value is None or value == "":
        if default is _MISSING:
            raise ImproperlyConfigured(f"Set the environment variable {name}.")
        return default  # type: ignore[return-value]
    return value


def env_bool(name: str, default: bool) -> bool:
    """Parse ``1/true/yes/on`` and ``0/false/no/off``; anything else is an error, not a silent False."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}.")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Parse a whole number within ``[minimum, maximum]``."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}.")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, not {value}.")
    return value


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    """Split a comma-separated variable, dropping blanks.

    >>> import os; os.environ["HOSPITAL_DOCTEST_LIST"] = "a.example, b.example,,"
    >>> env_list("HOSPITAL_DOCTEST_LIST")
    ['a.example', 'b.example']
    """
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_url(name: str, schemes: set[str], default: str | None = None) -> str | None:
    """Return a URL whose scheme is one of ``schemes``, or ``default`` when unset."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    scheme = urlsplit(raw).scheme
    if scheme not in schemes:
        raise ImproperlyConfigured(f"{name} must start with one of {sorted(schemes)}, not {scheme or raw!r}.")
    return raw


# --- Core --------------------------------------------------------------------------------------------------

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("Set ALLOWED_HOSTS (comma-separated host names) when DJANGO_DEBUG is off.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "hospital",  # the shell: cross-app commands (seed_demo)
    "medcard",
    "reservations",
    "screening",
    "dosing",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "hospital.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "hospital.middleware.NulByteMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.middleware.RefusalMiddleware",
]

ROOT_URLCONF = "hospital.urls"
WSGI_APPLICATION = "hospital.wsgi.application"
ASGI_APPLICATION = "hospital.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "hospital.views.preferences",
            ],
        },
    },
]

# --- Database ----------------------------------------------------------------------------------------------
# SQLite only for the dev runner; production refuses to start without PostgreSQL.

DATABASE_URL = env_url("DATABASE_URL", {"postgres", "postgresql", "sqlite"})
if DATABASE_URL is None and not DEBUG:
    raise ImproperlyConfigured("Set DATABASE_URL (postgres://...) when DJANGO_DEBUG is off.")
# Django's development server (runserver) handles each request in a new thread and never closes that thread's
# connection when it ends: with persistent connections every request would leave one open on PostgreSQL
# until "too many clients". Under runserver each connection is therefore closed after its request.
_RUNSERVER = sys.argv[1:2] == ["runserver"]
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL or f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}",
        conn_max_age=0 if _RUNSERVER else env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend, with the per-request health check only after the connection sat idle (a SELECT 1
    # round trip less on every busy request; core/postgresql/base.py).
    DATABASES["default"]["ENGINE"] = "core.postgresql"
# Behind PgBouncer in transaction mode (docs/deploy.md) a connection may change server between transactions:
# no server-side cursors (they live past a transaction). The server's TimeZone must be UTC, so Django never
# sets it per session.
if env_bool("DATABASE_TRANSACTION_POOLING", False):
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Broker, cache and Celery ------------------------------------------------------------------------------
# With REDIS_URL: Redis is broker, result store and cache. Without it (dev runner only): kombu's filesystem
# transport, a file result store and a file cache, so a real separate worker process still runs the tasks.

REDIS_URL = env_url("REDIS_URL", {"redis", "rediss"})
if REDIS_URL is None and not DEBUG:
    raise ImproperlyConfigured("Set REDIS_URL (redis://...) when DJANGO_DEBUG is off.")
VAR_DIR = Path(env_str("HOSPITAL_VAR_DIR", default=str(BASE_DIR / "var")))

if REDIS_URL:
    CACHES = {
        "default": {
            # Steps aside while Redis is down: reads miss, writes are skipped (hospital/cache.py).
            "BACKEND": "hospital.cache.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2},
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        # A task that was taken but never acknowledged (its worker died) is handed out again after this long.
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=1),
    }
else:
    _broker_dir = VAR_DIR / "broker"
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
    CELERY_BROKER_URL = "filesystem://"
    CELERY_RESULT_BACKEND = f"file://{VAR_DIR / 'results'}"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
    }

# Sessions read from the cache (Redis; the dev runner's file cache) and written through to the database: no
# session query on a signed-in request; from the database alone while Redis is down (hospital/cache.py).
# Django's database engine, which the dev set-up used, read the session row on every request.
SESSION_ENGINE = "hospital.cache"

CELERY_TIMEZONE = "Asia/Shanghai"
CELERY_ENABLE_UTC = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Acknowledge after the task ran, and give a task back when its worker process dies: nothing accepted is
# lost. Tasks are idempotent (see STYLE.md), so a second delivery is harmless.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 300, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 360, minimum=1)
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    # Times are Asia/Shanghai (CELERY_TIMEZONE). Tasks are idempotent: a missed or doubled beat is harmless.
    "holds-expire": {"task": "reservations.holds_expire", "schedule": 60.0},
    "payments-reconcile-unknown": {"task": "reservations.payments_reconcile_unknown", "schedule": 300.0},
    "refunds-follow-up": {"task": "reservations.refunds_follow_up", "schedule": 600.0},
    # Yesterday's bills (ready from about 09:00-10:00); the 12:00 run retries only a failed report.
    "payments-reconcile-bills": {
        "task": "reservations.payments_reconcile_bills",
        "schedule": crontab(hour="10,12", minute=0),
    },
    "sessions-generate": {"task": "reservations.sessions_generate", "schedule": crontab(hour=0, minute=30)},
    "reminders-send": {"task": "reservations.reminders_send", "schedule": crontab(hour=18, minute=0)},
    "no-shows-sweep": {"task": "reservations.no_shows_sweep", "schedule": crontab(minute="*/30")},
    "screening-resume-stuck": {"task": "screening.resume_stuck", "schedule": 300.0},
    # Tasks the broker could not take while it was down (medcard.services.outbox).
    "outbox-flush": {"task": "medcard.outbox_flush", "schedule": 60.0},
}
# A request that enqueues while Redis is down gives up after one quick retry and the task goes to the outbox
# (medcard.services.outbox); the result store's own reconnection (20 tries a second apart by default, which
# a sending request would wait for) is cut to the same.
_QUICK_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
CELERY_TASK_PUBLISH_RETRY_POLICY = _QUICK_RETRY
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"retry_policy": _QUICK_RETRY}

# The worker writes a heartbeat every WORKER_HEARTBEAT_SECONDS; /healthz calls it stale after 3 missed beats.
WORKER_HEARTBEAT_SECONDS = env_int("WORKER_HEARTBEAT_SECONDS", 20, minimum=1)
WORKER_HEARTBEAT_STALE_SECONDS = 3 * WORKER_HEARTBEAT_SECONDS

# --- Users and sign-in -------------------------------------------------------------------------------------

AUTH_USER_MODEL = "medcard.User"
AUTHENTICATION_BACKENDS = ["medcard.backends.LockoutBackend"]
LOGIN_URL = "medcard:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"
LOGIN_MAX_FAILURES = env_int("LOGIN_MAX_FAILURES", 5, minimum=1)
LOGIN_LOCKOUT_MINUTES = env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1)
# Wrong passwords from one source (client address, see TRUSTED_PROXIES) for any names before the source is
# refused for LOGIN_LOCKOUT_MINUTES; LOGIN_MAX_FAILURES counts one name from one source.
LOGIN_MAX_FAILURES_PER_SOURCE = env_int("LOGIN_MAX_FAILURES_PER_SOURCE", 20, minimum=1)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Personal data -----------------------------------------------------------------------------------------
# FIELD_ENCRYPTION_KEYS: comma-separated Fernet keys, newest first (MultiFernet: encrypt with the first,
# decrypt with any, so keys rotate without downtime). BLIND_INDEX_KEY: HMAC key for look-ups of encrypted
# values. The dev runner supplies throwaway keys; production refuses to start without real ones.

FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS")
BLIND_INDEX_KEY = env_str("BLIND_INDEX_KEY", default=None)
if not FIELD_ENCRYPTION_KEYS or not BLIND_INDEX_KEY:
    raise ImproperlyConfigured("Set FIELD_ENCRYPTION_KEYS and BLIND_INDEX_KEY (see README: Configuration).")
# CARD_TOKEN_SIGNING_KEY: the Ed25519 private key (base64 of its 32-byte seed) that signs the dynamic QR
# tokens of medical cards; kiosks verify with the public half, published at /api/v1/card-tokens/public-key/.
CARD_TOKEN_SIGNING_KEY = env_str("CARD_TOKEN_SIGNING_KEY", default=None)
if not CARD_TOKEN_SIGNING_KEY:
    raise ImproperlyConfigured("Set CARD_TOKEN_SIGNING_KEY (see README: Configuration).")
CARD_TOKEN_LIFETIME_SECONDS = env_int("CARD_TOKEN_LIFETIME_SECONDS", 60, minimum=10, maximum=600)
# The card page fetches a fresh token this often, well inside the token's lifetime.
CARD_QR_REFRESH_SECONDS = env_int("CARD_QR_REFRESH_SECONDS", 30, minimum=1, maximum=300)
DEMO_DATA_ALLOWED = env_bool("DEMO_DATA_ALLOWED", DEBUG)

# --- Medical card ------------------------------------------------------------------------------------------
# SMS and identity checks go through pluggable backends (dotted paths); the sandboxes speak to nobody.
SMS_BACKEND = env_str("SMS_BACKEND", default="medcard.sms.SandboxSmsBackend")
IDENTITY_BACKEND = env_str("IDENTITY_BACKEND", default="medcard.identity.SandboxIdentityBackend")
_SANDBOXED = SMS_BACKEND.endswith("SandboxSmsBackend") or IDENTITY_BACKEND.endswith("SandboxIdentityBackend")
if not DEBUG and _SANDBOXED and not env_bool("ALLOW_SANDBOX_BACKENDS", False):
    raise ImproperlyConfigured(
        "SMS_BACKEND and IDENTITY_BACKEND are sandboxes: configure real providers, or set "
        "ALLOW_SANDBOX_BACKENDS=true on a training system."
    )
SCREENING_MAX_UPLOAD_BYTES = env_int("SCREENING_MAX_UPLOAD_BYTES", 20 * 1024 * 1024, minimum=1024)
SCREENING_MAX_IMAGE_PIXELS = env_int("SCREENING_MAX_IMAGE_PIXELS", 50_000_000, minimum=1_000_000)
SCREENING_MAX_PDF_PAGES = env_int("SCREENING_MAX_PDF_PAGES", 10, minimum=1, maximum=200)
SCREENING_MAX_UPLOADS_PER_BOOKING = env_int("SCREENING_MAX_UPLOADS_PER_BOOKING", 10, minimum=1, maximum=100)
SCREENING_KEEP_ORIGINALS = env_bool("SCREENING_KEEP_ORIGINALS", False)
# Screening of bookings: a screened booking's hold waits at most SCREENING_UPLOAD_HOURS for a first report
# (never past the slice's booking cut-off); exams without a ScreeningExamSetting row run in
# SCREENING_DEFAULT_MODE; SCREENING_AUDIT_SAMPLE of the automatic decisions are flagged for a blind staff
# audit (a fraction, 0.02-0.05 recommended).
SCREENING_UPLOAD_HOURS = env_int("SCREENING_UPLOAD_HOURS", 24, minimum=1, maximum=24 * 14)
SCREENING_REVIEW_HOURS = env_int("SCREENING_REVIEW_HOURS", 24, minimum=1, maximum=24 * 14)
# After an approval the patient has SCREENING_PAYMENT_HOURS to pay (told by message), never past the slice's
# booking cut-off and never less than the department's own payment window.
SCREENING_PAYMENT_HOURS = env_int("SCREENING_PAYMENT_HOURS", 24, minimum=1, maximum=24 * 14)
SCREENING_DEFAULT_MODE = env_str("SCREENING_DEFAULT_MODE", default="shadow")
if SCREENING_DEFAULT_MODE not in ("off", "shadow", "live"):
    raise ImproperlyConfigured(
        f"SCREENING_DEFAULT_MODE must be off, shadow or live, not {SCREENING_DEFAULT_MODE!r}."
    )
try:
    SCREENING_AUDIT_SAMPLE = float(env_str("SCREENING_AUDIT_SAMPLE", default="0.03"))
except ValueError:
    raise ImproperlyConfigured("SCREENING_AUDIT_SAMPLE must be a fraction such as 0.03.") from None
if not 0.0 <= SCREENING_AUDIT_SAMPLE <= 1.0:
    raise ImproperlyConfigured(
        f"SCREENING_AUDIT_SAMPLE must be between 0 and 1, not {SCREENING_AUDIT_SAMPLE}."
    )
# Reading a report (OCR) runs on its own queue when a worker is started with ``-Q <queue>`` for it; the
# default, Celery's own queue, works with the single worker of the dev runner.
SCREENING_OCR_QUEUE = env_str("SCREENING_OCR_QUEUE", default="celery")

# --- Dosing (pharmacists' dose calculator and its API) -----------------------------------------------------
# Calls per minute one institution's API key may make (DRF throttling; answers 429 beyond).
DOSING_API_CALLS_PER_MINUTE = env_int("DOSING_API_CALLS_PER_MINUTE", 120, minimum=1, maximum=100_000)
# Posterior samples behind credible bands and probabilities of target attainment on the pages and the API.
DOSING_SAMPLES = env_int("DOSING_SAMPLES", 300, minimum=50, maximum=5000)
# RESERVATION_NOTIFIERS: where patient messages go (dotted paths of notifier classes). The sandbox outbox and
# the console until an SMS or WeChat template provider is configured.
RESERVATION_NOTIFIERS = env_list(
    "RESERVATION_NOTIFIERS",
    ["reservations.notifications.SandboxNotifier", "reservations.notifications.ConsoleNotifier"],
)
CELERY_TASK_ROUTES = {"screening.extract": {"queue": SCREENING_OCR_QUEUE}}
# Batch simulation chunks (CPU-bound numpy, seconds each) may get their own workers: DOSING_BATCH_QUEUE names
# their queue (default Celery's own, which the dev runner's single worker reads).
DOSING_BATCH_QUEUE = env_str("DOSING_BATCH_QUEUE", default="celery")
# OCR (onnxruntime) holds large buffers: a worker process is replaced after it grew past this (KiB; checked
# after each task). Each reading step is capped at 60 s soft / 90 s hard (screening/tasks.py).
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env_int("CELERY_WORKER_MAX_MEMORY_PER_CHILD", 1_500_000, minimum=100_000)
# Uploaded files are readable by the platform's own user only.
FILE_UPLOAD_PERMISSIONS = 0o600
MEDCARD_MAX_FAMILY_MEMBERS = env_int("MEDCARD_MAX_FAMILY_MEMBERS", 5, minimum=0, maximum=20)
# The desk may unmask a field only of a patient it looked up (card scan, or number + second factor) in the
# last DESK_REVEAL_WINDOW_MINUTES; unmasking more than DESK_REVEAL_ALERT_PATIENTS_PER_HOUR distinct patients
# in an hour raises an alert (audit trail page and an ERROR log line).
DESK_REVEAL_WINDOW_MINUTES = env_int("DESK_REVEAL_WINDOW_MINUTES", 15, minimum=1, maximum=240)
DESK_REVEAL_ALERT_PATIENTS_PER_HOUR = env_int("DESK_REVEAL_ALERT_PATIENTS_PER_HOUR", 5, minimum=1)
MEDCARD_MAX_CORRECTIONS = env_int("MEDCARD_MAX_CORRECTIONS", 3, minimum=0, maximum=10)
# The no-show policy: NO_SHOW_LIMIT missed appointments within NO_SHOW_WINDOW_DAYS suspend online booking for
# NO_SHOW_SUSPENSION_DAYS from the last of them (staff may waive a no-show with a reason).
NO_SHOW_LIMIT = env_int("NO_SHOW_LIMIT", 3, minimum=1, maximum=20)
NO_SHOW_WINDOW_DAYS = env_int("NO_SHOW_WINDOW_DAYS", 90, minimum=1, maximum=730)
NO_SHOW_SUSPENSION_DAYS = env_int("NO_SHOW_SUSPENSION_DAYS", 90, minimum=0, maximum=730)
SMS_CODE_LIFETIME_SECONDS = 300
SMS_CODE_MAX_FAILED_ATTEMPTS = 5
SMS_CODE_MIN_INTERVAL_SECONDS = 60
SMS_CODES_PER_NUMBER_PER_HOUR = 5
SMS_CODES_PER_IP_PER_HOUR = env_int("SMS_CODES_PER_IP_PER_HOUR", 20, minimum=1)

# --- Booking surge -----------------------------------------------------------------------------------------
# The WSGI shield (reservations/shield.py) answers holds for slices known to be full before Django runs;
# HOLD_SHIELD=false serves every hold through Django (the surge benchmark measures the database path so).
HOLD_SHIELD = env_bool("HOLD_SHIELD", True)
# How long the availability pages' and API's rows stay cached (reservations/discovery.py); every change of
# the numbers moves the department to a new cache version at once, so this only bounds what an edit outside
# the services (the admin) may leave stale. 0 turns the cache off.
AVAILABILITY_CACHE_SECONDS = env_int("AVAILABILITY_CACHE_SECONDS", 30, minimum=0, maximum=3600)

# --- Payments ----------------------------------------------------------------------------------------------
# With PAYMENT_SANDBOX (the default on dev machines) a local sandbox gateway under /sandbox-gateway/ plays
# WeChat Pay and Alipay with their real protocols and test keys generated into PAYMENT_SANDBOX_KEY_DIR.
# Otherwise the merchant's real credentials are required.
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
PAYMENT_SANDBOX = env_bool("PAYMENT_SANDBOX", DEBUG)
if PAYMENT_SANDBOX:
    # The sandbox gateway is an app of its own (views, cashier template, delivery tasks); a process without
    # PAYMENT_SANDBOX never loads its code, and hospital/urls.py mounts its URLs under the same switch.
    INSTALLED_APPS.append("reservations.payments.sandbox")
PAYMENT_SANDBOX_KEY_DIR = VAR_DIR / "sandbox-keys"
# Where the sandbox gateway is reached: empty for this site's own /sandbox-gateway (following
# PUBLIC_BASE_URL); another host of the same code when one plays the gateway apart (the surge benchmark does,
# as a real gateway is never the web tier calling itself).
PAYMENT_SANDBOX_URL = env_str("PAYMENT_SANDBOX_URL", default="").rstrip("/")
# The outpatient front desk's telephone, shown where something cannot be done online (a paid same-day
# appointment cannot be cancelled online). The default is a placeholder: set the hospital's real number.
OUTPATIENT_DESK_PHONE = env_str("OUTPATIENT_DESK_PHONE", default="021-0000 0000")
WECHATPAY = {
    "mchid": env_str("WECHATPAY_MCHID", default=""),
    "appid": env_str("WECHATPAY_APPID", default=""),
    "merchant_serial": env_str("WECHATPAY_MERCHANT_SERIAL", default=""),
    "merchant_private_key_pem": env_str("WECHATPAY_MERCHANT_PRIVATE_KEY", default=""),
    "platform_public_key_id": env_str("WECHATPAY_PLATFORM_PUBLIC_KEY_ID", default=""),
    "platform_public_key_pem": env_str("WECHATPAY_PLATFORM_PUBLIC_KEY", default=""),
    "apiv3_key": env_str("WECHATPAY_APIV3_KEY", default=""),
    "api_base": env_str("WECHATPAY_API_BASE", default="https://api.mch.weixin.qq.com"),
}
# The WeChat Official Account's AppSecret (appid WECHATPAY_APPID): exchanges the web OAuth code for the
# patient's openid, which JSAPI payment inside WeChat's browser needs.
WECHAT_APP_SECRET = env_str("WECHAT_APP_SECRET", default="")
ALIPAY = {
    "app_id": env_str("ALIPAY_APP_ID", default=""),
    "app_private_key_pem": env_str("ALIPAY_APP_PRIVATE_KEY", default=""),
    "alipay_public_key_pem": env_str("ALIPAY_PUBLIC_KEY", default=""),
    "seller_id": env_str("ALIPAY_SELLER_ID", default=""),
    "gateway_url": env_str("ALIPAY_GATEWAY_URL", default="https://openapi.alipay.com/gateway.do"),
}
if not PAYMENT_SANDBOX and not DEBUG:
    _required = [
        "WECHATPAY_MCHID",
        "WECHATPAY_APPID",
        "WECHATPAY_MERCHANT_SERIAL",
        "WECHATPAY_MERCHANT_PRIVATE_KEY",
        "WECHATPAY_PLATFORM_PUBLIC_KEY_ID",
        "WECHATPAY_PLATFORM_PUBLIC_KEY",
        "WECHATPAY_APIV3_KEY",
        "WECHAT_APP_SECRET",
        "ALIPAY_APP_ID",
        "ALIPAY_APP_PRIVATE_KEY",
        "ALIPAY_PUBLIC_KEY",
        "ALIPAY_SELLER_ID",
    ]
    _missing = [name for name in _required if not os.environ.get(name)]
    if _missing:
        raise ImproperlyConfigured(
            f"Set the payment credentials {', '.join(_missing)}, or PAYMENT_SANDBOX=true."
        )

# --- Internationalisation and time -------------------------------------------------------------------------
# Stored in UTC; shown in the hospital's zone.

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "Asia/Shanghai"
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_SAMESITE = "Lax"

# --- Static files (WhiteNoise) -----------------------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "templates" / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# Files a browser asks for at the site's root (/favicon.ico), served by WhiteNoise like the static files.
WHITENOISE_ROOT = BASE_DIR / "templates" / "root"
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_ROOT = VAR_DIR / "media"

# --- Security ----------------------------------------------------------------------------------------------

SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("TRUST_X_FORWARDED_PROTO", False) else None
)
# TRUSTED_PROXIES: the reverse proxies' addresses or networks (comma-separated, CIDR allowed). Behind them the
# client's address is read from X-Forwarded-For (core/clientip.py); it is what per-network limits count.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES")
try:
    _trusted_networks = [ipaddress.ip_network(value, strict=False) for value in TRUSTED_PROXIES]
except ValueError as exc:
    raise ImproperlyConfigured(f"TRUSTED_PROXIES must be IP addresses or networks: {exc}.") from None
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# Load balancers probe /healthz over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 12 * 3600, minimum=60)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- API ---------------------------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Outpatient platform API",
    "DESCRIPTION": "Medical cards, reservations, screening and dosing for a teaching hospital.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # every operation lists the error statuses it can answer, with the one error body (core/schema.py)
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "core.schema.error_responses"],
    "ENUM_NAME_OVERRIDES": {
        "AccountKindEnum": "medcard.models.User.Kind",
        "DepartmentKindEnum": "reservations.models.Department.Kind",
        "BatchJobKindEnum": "dosing.batch.models.BatchJob.Kind",
        "BatchJobStatusEnum": "dosing.batch.models.BatchJob.Status",
    },
}

# --- Logging: one JSON object per line on stdout -----------------------------------------------------------

LOG_LEVEL = env_str("LOG_LEVEL", default="INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(
        f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {LOG_LEVEL!r}."
    )
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s",
            "timestamp": "time",  # ISO 8601 in UTC
            "rename_fields": {"levelname": "level", "name": "logger"},
            "json_ensure_ascii": False,
        }
    },
    "handlers": {
        "stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "json"}
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        # Replace Django's own plain-text console handlers, so every line stays JSON.
        "django": {"handlers": ["stdout"], "level": LOG_LEVEL, "propagate": False},
        "django.server": {"handlers": ["stdout"], "level": LOG_LEVEL, "propagate": False},
    },
}

HOSPITAL_NAME = {"zh-hans": "申城大学附属医院", "en": "Shencheng University Affiliated Hospital"}
