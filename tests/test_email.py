"""Email from config vars: a password reset and an error report through a real SMTP server, and the check.

The SMTP server is aiosmtpd (tests/requirements.txt), on loopback in this module's own network namespace
(the `workdir` fixture), speaking what a provider speaks: STARTTLS required, then AUTH required. Its
certificate is the test's own, made with openssl; SSL_CERT_FILE makes it the one CA the baked app trusts, in
place of the public CAs that sign a real provider's certificate. The app runs with production settings (DYNO
set) and a SQLite database: email needs no PostgreSQL.
"""

import email
import email.policy
import json
import os
import re
import shutil

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from test_uv import UV, uv_env

import realstack
from conftest import run

SMTP_USER = "postmaster@mg.example.com"
# Characters a URL would need percent-encoded (hence one variable per setting, not EMAIL_URL).
SMTP_PASSWORD = "p/a+ss=w@rd:1%"
PRODUCTION = {
    "DYNO": "web.1",
    "DJANGO_SECRET_KEY": "a-production-secret-of-more-than-fifty-characters-0123456789abcdef",
}
EMAIL = {
    "DEFAULT_FROM_EMAIL": "My Shop <noreply@example.com>",
    "SERVER_EMAIL": "errors@example.com",
    # A comma inside a quoted name stays in the name.
    "ADMINS": '"Lovelace, Ada" <ada@example.com>, ops@example.com',
}

# Run in the baked project: the project's URLs, plus Django's auth views (a project that offers password
# resets includes them) and one view with a bug. Through Django's test client, so through every middleware.
SCRIPT = """
import json, sys, types
import django
django.setup()
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import include, path

call_command("migrate", verbosity=0)
get_user_model().objects.create_user("ada", "ada@example.com", "a-long-password-1")

def broken(request):
    raise RuntimeError("a bug in a view")

urls = types.ModuleType("email_test_urls")
urls.urlpatterns = [
    path("accounts/", include("django.contrib.auth.urls")),
    path("broken/", broken),
    path("", include(settings.ROOT_URLCONF)),
]
sys.modules["email_test_urls"] = urls
client = Client(raise_request_exception=False, HTTP_HOST="app.example.com")
with override_settings(ROOT_URLCONF="email_test_urls"):
    reset = client.post("/accounts/password_reset/", {"email": "ada@example.com"}, secure=True)
    error = client.get("/broken/", secure=True)
print(json.dumps({"reset": reset.status_code, "error": error.status_code, "debug": settings.DEBUG}))
"""


class Inbox:
    """aiosmtpd's handler: keeps every message it accepts, with what the session had negotiated."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.messages.append(
            {
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "message": message,
                "tls": session.ssl is not None,
                "login": session.auth_data.login.decode() if session.auth_data else None,
            }
        )
        return "250 Message accepted for delivery"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login.decode() == SMTP_USER and auth_data.password.decode() == SMTP_PASSWORD
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


@pytest.fixture(scope="module")
def certificate(workdir):
    """A self-signed certificate for 127.0.0.1: (certificate file, key file)."""
    cert, key = workdir / "smtp-cert.pem", workdir / "smtp-key.pem"
    run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)]
    )
    return cert, key


@pytest.fixture
def smtp_server(certificate):
    """A provider's SMTP server on 127.0.0.1: STARTTLS and AUTH required. Yields (port, inbox)."""
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, certificate))
    inbox = Inbox()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=realstack.free_port(),
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticate,
        ready_timeout=30,
    )
    controller.start()
    try:
        yield controller.port, inbox
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def pip_python(venv_python):
    return venv_python


@pytest.fixture(scope="module")
def uv_python(bake_once, workdir):
    """The uv bake installed as its README says (`uv sync --locked`, dev group included), Debian's Python."""
    project = workdir / "uv-project"
    shutil.copytree(bake_once(package_manager="uv"), project, ignore=shutil.ignore_patterns(".venv", "staticfiles"))
    with realstack.host_network():  # uv fetches from PyPI (or its cache)
        run([UV, "sync", "--locked"], cwd=project, env=uv_env(), timeout=900)
    return str(project / ".venv/bin/python")


def environ(tmp_path, **extra):
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    env["DJANGO_SETTINGS_MODULE"] = "my_heroku_app.settings"  # the default answers' slug, as manage.py sets it
    env.update(extra)
    return env


def manage(python, project, env, *arguments, check=True):
    return run([python, "manage.py", *arguments], cwd=project, env=env, check=check, timeout=120)


@pytest.mark.parametrize("package_manager", ["pip", "uv"])
def test_password_reset_and_error_report_go_through_smtp(
    request, bake_once, smtp_server, certificate, tmp_path, package_manager
):
    python = request.getfixturevalue(f"{package_manager}_python")
    project = bake_once(package_manager=package_manager)
    port, inbox = smtp_server
    env = environ(
        tmp_path,
        **PRODUCTION,
        **EMAIL,
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(port),
        EMAIL_HOST_USER=SMTP_USER,
        EMAIL_HOST_PASSWORD=SMTP_PASSWORD,
        SSL_CERT_FILE=str(certificate[0]),
    )
    result = run([python, "-c", SCRIPT], cwd=project, env=env, timeout=120)
    statuses = json.loads(result.stdout.splitlines()[-1])
    # The reset form redirects to its "done" page; the broken view is a 500 page, DEBUG off.
    assert statuses == {"reset": 302, "error": 500, "debug": False}, result.stderr

    assert len(inbox.messages) == 2, [item["message"]["Subject"] for item in inbox.messages]
    reset, report = inbox.messages
    for item in inbox.messages:
        assert item["tls"] and item["login"] == SMTP_USER

    assert reset["rcpt_tos"] == ["ada@example.com"] and reset["mail_from"] == "noreply@example.com"
    assert reset["message"]["To"] == "ada@example.com"
    assert reset["message"]["From"] == "My Shop <noreply@example.com>"
    assert reset["message"]["Subject"] == "Password reset on app.example.com"
    body = reset["message"].get_body().get_content()
    link = re.search(r"https://app\.example\.com/accounts/reset/([\w-]+)/([\w-]+)/", body)
    assert link and link[1] == "MQ", body  # the first user's id, base64
    assert "In case you’ve forgotten, you are: ada" in body

    assert sorted(report["rcpt_tos"]) == ["ada@example.com", "ops@example.com"]
    assert report["mail_from"] == "errors@example.com" and report["message"]["From"] == "errors@example.com"
    assert report["message"]["To"] == "ada@example.com, ops@example.com"  # Django 5.2's mail_admins drops names
    assert report["message"]["Subject"] == "[Django] ERROR (EXTERNAL IP): Internal Server Error: /broken/"
    text = report["message"].get_body(("plain",)).get_content()
    assert "RuntimeError at /broken/\r\na bug in a view" in text and "HTTP_HOST = 'app.example.com'" in text
    # The report lists the settings with secrets masked: neither the SMTP password nor the secret key leaks.
    assert "EMAIL_HOST_PASSWORD = '********************'" in text
    assert SMTP_PASSWORD not in text and PRODUCTION["DJANGO_SECRET_KEY"] not in text


def test_wrong_smtp_password_fails_the_send(bake_once, pip_python, smtp_server, certificate, tmp_path):
    """A send the server refuses is an error the owner sees, not a message quietly lost."""
    port, inbox = smtp_server
    env = environ(
        tmp_path,
        **PRODUCTION,
        **EMAIL,
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(port),
        EMAIL_HOST_USER=SMTP_USER,
        EMAIL_HOST_PASSWORD="not-the-password",
        SSL_CERT_FILE=str(certificate[0]),
    )
    result = manage(pip_python, bake_once(), env, "sendtestemail", "ada@example.com", check=False)
    assert result.returncode != 0 and "SMTPAuthenticationError" in result.stderr, result.stderr
    assert inbox.messages == []


def test_dyno_without_email_settings_warns_and_fails_to_send(bake_once, pip_python, tmp_path):
    project = bake_once()
    env = environ(tmp_path, **PRODUCTION)
    result = manage(pip_python, project, env, "check")
    assert "(email.W001) No email server is configured: Django sends email to localhost:25" in result.stderr
    assert "password resets fail and error reports to ADMINS are lost" in result.stderr
    assert "HINT: Add an email add-on" in result.stderr and "docs/email.md" in result.stderr
    # The release phase's command prints it in every deploy's log.
    release = manage(pip_python, project, env, "migrate", "--noinput")
    assert "(email.W001) No email server is configured" in release.stderr
    # --fail-level WARNING, as a CI gate would: the warning stops it.
    gate = manage(pip_python, project, env, "check", "--deploy", "--fail-level", "WARNING", check=False)
    assert gate.returncode != 0 and "email.W001" in gate.stderr
    # Nothing listens on localhost:25 in this network, as on a dyno: the send fails loudly.
    sent = manage(pip_python, project, env, "sendtestemail", "ada@example.com", check=False)
    assert sent.returncode != 0 and "ConnectionRefusedError" in sent.stderr, sent.stderr


def test_email_server_without_a_sender_warns(bake_once, pip_python, tmp_path):
    env = environ(tmp_path, **PRODUCTION, EMAIL_HOST="smtp.example.com")
    result = manage(pip_python, bake_once(), env, "check")
    assert "(email.W002) Email is sent from webmaster@localhost (DEFAULT_FROM_EMAIL)" in result.stderr
    assert "email.W001" not in result.stderr


@pytest.mark.parametrize("package_manager", ["pip", "uv"])
def test_no_email_warning_once_configured(request, bake_once, tmp_path, package_manager):
    python = request.getfixturevalue(f"{package_manager}_python")
    env = environ(tmp_path, **PRODUCTION, **EMAIL, EMAIL_HOST="smtp.example.com")
    result = manage(python, bake_once(package_manager=package_manager), env, "check", "--fail-level", "WARNING")
    assert "System check identified no issues" in result.stdout and "email." not in result.stderr


@pytest.mark.parametrize("extra", [{}, {"DYNO": "web.1", "DJANGO_LOCAL_HTTP": "true"}], ids=["local", "bin-dyno"])
def test_locally_email_is_printed_and_nothing_warns(bake_once, pip_python, tmp_path, extra):
    """No EMAIL_HOST on your machine, with or without bin/dyno: the console backend, no warning."""
    env = environ(tmp_path, **({**PRODUCTION, **extra} if extra else {}))
    project = bake_once()
    result = manage(pip_python, project, env, "sendtestemail", "ada@example.com")
    assert "To: ada@example.com" in result.stdout and "Subject: Test email from" in result.stdout
    assert "email." not in manage(pip_python, project, env, "check").stderr


@pytest.mark.parametrize(
    ("port", "tls", "expected"),
    [(None, None, [587, True, False]), ("465", None, [465, False, True]), ("25", "false", [25, False, False])],
    ids=["default-starttls", "465-tls", "tls-off"],
)
def test_port_and_encryption(bake_once, pip_python, tmp_path, port, tls, expected):
    extra = {key: value for key, value in {"EMAIL_PORT": port, "EMAIL_USE_TLS": tls}.items() if value}
    env = environ(tmp_path, **PRODUCTION, **EMAIL, EMAIL_HOST="smtp.example.com", **extra)
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.EMAIL_PORT, s.EMAIL_USE_TLS, s.EMAIL_USE_SSL, s.EMAIL_TIMEOUT, s.ADMINS]))"
    )
    values = json.loads(run([pip_python, "-c", code], cwd=bake_once(), env=env).stdout)
    assert values[:3] == expected and values[3] == 10
    assert values[4] == [["Lovelace, Ada", "ada@example.com"], ["", "ops@example.com"]]


@pytest.mark.parametrize("admins", ["ada", "Ada <ada@example>", "ada@example.com; ops@example.com"])
def test_unreadable_admins_stops_with_an_example(bake_once, pip_python, tmp_path, admins):
    env = environ(tmp_path, **PRODUCTION, **{**EMAIL, "ADMINS": admins}, EMAIL_HOST="smtp.example.com")
    result = manage(pip_python, bake_once(), env, "check", check=False)
    assert result.returncode != 0
    assert f"ADMINS={admins!r}: give email addresses separated by commas" in result.stderr
    assert 'e.g. "Ada Lovelace <ada@example.com>, ops@example.com"' in result.stderr


def test_smtp_server_refuses_plain_text_login(smtp_server):
    """The stand-in provider really requires STARTTLS before AUTH (so the passing test above used TLS)."""
    import smtplib

    port, inbox = smtp_server
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo()
        with pytest.raises(smtplib.SMTPException):
            client.login(SMTP_USER, SMTP_PASSWORD)
    assert inbox.messages == []
