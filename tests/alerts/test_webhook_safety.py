"""Webhooks cannot reach the inside: a URL aimed at cloud metadata, loopback, private or other non-public
addresses (or not http/https, or with credentials) is refused when saved (page and admin) and when sent
(after resolving, on a connection to the checked address); redirects are not followed; refusals are final
and recorded without secrets. The local receiver (127.0.0.1) is reachable only through the allow-list."""

import ipaddress
import logging
import socket

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from dashboard.alerts.rules import alert_raise
from dashboard.alerts.sending import alert_delivery_send
from dashboard.models import AlertSettings
from dashboard.notifications import outbound
from tests.alerts.conftest import Receiver
from tests.alerts.helpers import make_environment
from velaops.env import env_networks

pytestmark = pytest.mark.django_db

NAME = "hooks.example.test"  # resolved only by the `dns` fixture's stub


@pytest.fixture
def dns(monkeypatch):
    """socket.getaddrinfo answering NAME from `answers` (one list of addresses per lookup, the last one
    repeated); every other name resolves as usual. `lookups` counts the lookups of NAME."""
    real = socket.getaddrinfo

    class Stub:
        answers: list[list[str]] = [["93.184.215.14"]]
        lookups = 0

        def __call__(self, host, port, family=0, type=0, proto=0, flags=0):
            if host != NAME:
                return real(host, port, family, type, proto, flags)
            answer = self.answers[min(self.lookups, len(self.answers) - 1)]
            self.lookups += 1
            return [
                (
                    socket.AF_INET6 if ":" in a else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (a, port, 0, 0) if ":" in a else (a, port),
                )
                for a in answer
            ]

    stub = Stub()
    monkeypatch.setattr(socket, "getaddrinfo", stub)
    return stub


@pytest.fixture
def inside(receiver):
    """An internal service that must never be reached (on 127.0.0.2: not in the tests' allow-list)."""
    with Receiver(host="127.0.0.2") as running:
        yield running


# Every class of address that is not public, with the words the refusal must say.
REFUSED_ADDRESSES = [
    ("169.254.169.254", "cloud metadata"),
    ("fd00:ec2::254", "cloud metadata"),
    ("::ffff:169.254.169.254", "cloud metadata"),
    ("64:ff9b::a9fe:a9fe", "cloud metadata"),  # NAT64 form
    ("2002:a9fe:a9fe::", "cloud metadata"),  # 6to4 form
    ("169.254.170.2", "cloud metadata"),  # ECS task metadata and credentials
    ("127.0.0.1", "loopback"),
    ("127.5.6.7", "loopback"),
    ("::1", "loopback"),
    ("::ffff:127.0.0.1", "IPv6 form of a loopback"),
    ("10.0.0.5", "private"),
    ("172.16.3.4", "private"),
    ("192.168.1.1", "private"),
    ("fd12:3456::1", "private"),
    ("::ffff:10.0.0.5", "IPv6 form of a private"),
    ("2002:a00:5::", "IPv6 form of a private"),
    ("64:ff9b::a00:5", "IPv6 form of a private"),
    ("100.64.0.1", "shared"),
    ("100.127.255.254", "shared"),
    ("169.254.10.10", "link-local"),
    ("fe80::1", "link-local"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("224.0.0.251", "multicast"),
    ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("fec0::1", "site-local"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
    ("192.0.0.8", "special-purpose"),
    ("64:ff9b:1::a00:5", "reserved"),  # local-use NAT64: its embedded IPv4 cannot be read without the prefix
    ("192.0.2.10", "private"),  # documentation
    ("2001:db8::1", "private"),  # documentation
    ("198.18.0.1", "private"),  # benchmarking
]
PUBLIC_ADDRESSES = ["8.8.8.8", "2a00:1450:4001:80b::200e", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::"]


@pytest.mark.parametrize(("address", "why"), REFUSED_ADDRESSES)
def test_every_non_public_address_class_is_refused(address, why, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    assert why in outbound.address_refusal(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC_ADDRESSES)
def test_public_addresses_are_allowed(address, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    assert outbound.address_refusal(ipaddress.ip_address(address)) is None


def test_the_allow_list_opens_networks_but_never_the_metadata_addresses(settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = ["10.0.0.0/8", "fd00::/8", "169.254.0.0/16"]
    for address in ["10.1.2.3", "::ffff:10.1.2.3", "fd00:1::5", "169.254.10.10"]:
        assert outbound.address_refusal(ipaddress.ip_address(address)) is None
    for address in ["169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254", "169.254.170.2"]:
        assert outbound.address_refusal(ipaddress.ip_address(address)) == "a cloud metadata address"
    assert "private" in outbound.address_refusal(ipaddress.ip_address("192.168.0.1"))


def test_the_allow_list_setting_takes_cidrs_and_refuses_anything_else(monkeypatch):
    monkeypatch.setenv("WEBHOOK_ALLOWED_NETWORKS", " 10.0.0.0/8, 127.0.0.1 ,fd00::/8")
    assert env_networks("WEBHOOK_ALLOWED_NETWORKS") == ["10.0.0.0/8", "127.0.0.1/32", "fd00::/8"]
    for wrong in ["10.0.0.1/8", "intranet", "10.0.0.0/33"]:
        monkeypatch.setenv("WEBHOOK_ALLOWED_NETWORKS", wrong)
        with pytest.raises(ImproperlyConfigured, match="WEBHOOK_ALLOWED_NETWORKS"):
            env_networks("WEBHOOK_ALLOWED_NETWORKS")


# ---- on save: the alert settings page and the admin share the webhook field and its error --------------

REFUSED_URLS = [
    ("http://169.254.169.254/latest/meta-data/iam/security-credentials/", "cloud metadata address"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "cloud metadata address"),
    ("http://[::ffff:169.254.169.254]/latest/", "cloud metadata address"),
    ("http://[::ffff:a9fe:a9fe]/latest/", "cloud metadata address"),
    ("http://169.254.170.2/v2/credentials/abc", "cloud metadata address"),
    ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata service"),
    ("http://127.0.0.1:6379/", "loopback address"),
    ("http://[::1]:8000/", "loopback address"),
    ("http://localhost:8000/hook", "loopback name"),
    ("http://[::ffff:127.0.0.1]/", "IPv6 form of a loopback address"),
    ("http://10.0.0.5/hook", "private address"),
    ("http://172.16.3.4/hook", "private address"),
    ("https://192.168.1.1/hook", "private address"),
    ("http://[fd12:3456::1]/hook", "private address"),
    ("http://[2002:a00:5::]/hook", "IPv6 form of a private address"),
    ("http://[64:ff9b::a00:5]/hook", "IPv6 form of a private address"),
    ("http://100.64.0.1/hook", "shared (carrier-grade NAT) address"),
    ("http://169.254.10.10/hook", "link-local address"),
    ("http://[fe80::1]/hook", "link-local address"),
    ("http://0.0.0.0:8000/", "unspecified address"),
    ("http://[::]:8000/", "unspecified address"),
    ("http://224.0.0.251/", "multicast address"),
    ("http://[ff02::1]/", "multicast address"),
    ("http://240.0.0.1/", "reserved address"),
    ("ftp://hooks.example.com/upload", "only http:// and https:// URLs"),
    ("https://hookuser:hunter2@hooks.example.com/x", "user name or password"),
    (f"https://{NAME}/services/T/B/x", f"{NAME} resolves to a private address"),
]


@pytest.fixture
def editable(settings, dns):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    dns.answers = [["10.1.2.3"]]
    environment = make_environment("safety")
    return AlertSettings.objects.create(environment=environment, emails=["oncall@example.com"])


def page_post(client, user, row, url):
    client.force_login(user)
    data = {"enabled": "on", "emails": "oncall@example.com", "webhook_format": "slack", "resend_minutes": 15}
    return client.post(reverse("alert-settings", args=[row.environment.slug]), {**data, "new_webhook_url": url})


def admin_post(client, user, row, url):
    client.force_login(user)
    data = {
        "environment": row.environment.pk,
        "enabled": "on",
        "emails": "oncall@example.com",
        "webhook_url": url,
        "webhook_format": "slack",
        "resend_minutes": 15,
        "notify_steps": "on",
    }
    return client.post(reverse("admin:dashboard_alertsettings_change", args=[row.pk]), data)


@pytest.mark.parametrize(("url", "why"), REFUSED_URLS)
def test_the_settings_page_refuses_an_inside_webhook_with_a_field_error(client, operator, editable, url, why):
    response = page_post(client, operator, editable, url)
    assert response.status_code == 400
    (error,) = response.context["form"].errors["new_webhook_url"]
    assert error.startswith("Not allowed: ") and why in error
    assert "hunter2" not in response.content.decode()
    editable.refresh_from_db()
    assert editable.webhook_url == ""


@pytest.mark.parametrize(("url", "why"), REFUSED_URLS)
def test_the_admin_refuses_an_inside_webhook_with_a_field_error(client, superuser, editable, url, why):
    response = admin_post(client, superuser, editable, url)
    assert response.status_code == 200  # the change form again, with the error
    (error,) = response.context["adminform"].form.errors["webhook_url"]
    assert error.startswith("Not allowed: ") and why in error
    editable.refresh_from_db()
    assert editable.webhook_url == ""


def test_public_and_allow_listed_webhooks_are_saved_but_never_metadata(
    client, operator, superuser, editable, dns, settings
):
    dns.answers = [["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]]
    assert page_post(client, operator, editable, f"https://{NAME}/services/T/B/x").status_code == 302
    editable.refresh_from_db()
    assert editable.webhook_url == f"https://{NAME}/services/T/B/x"
    settings.WEBHOOK_ALLOWED_NETWORKS = ["10.0.0.0/8", "169.254.0.0/16"]
    assert admin_post(client, superuser, editable, "http://10.20.30.40:8080/hook").status_code == 302
    editable.refresh_from_db()
    assert editable.webhook_url == "http://10.20.30.40:8080/hook"
    response = page_post(client, operator, editable, "http://169.254.169.254/latest/")
    assert response.status_code == 400 and "cloud metadata" in response.context["form"].errors["new_webhook_url"][0]


def test_a_name_that_does_not_resolve_is_not_saved(client, operator, editable, dns):
    dns.answers = [[]]
    response = page_post(client, operator, editable, f"https://{NAME}/x")
    assert response.status_code == 400
    assert f"{NAME} could not be resolved" in response.context["form"].errors["new_webhook_url"][0]


# ---- when sending ------------------------------------------------------------------------------------


def webhook_delivery(environment, url):
    AlertSettings.objects.filter(environment=environment).update(webhook_url=url)
    alert = alert_raise(environment=environment, kind="target_down", subject="DOWN: x", body="b")
    return alert.deliveries.get(channel="webhook")


def sent_once(delivery):
    """Send once; the outcome and the refreshed row."""
    outcome = alert_delivery_send(delivery.pk)
    delivery.refresh_from_db()
    return outcome, delivery


def test_a_name_that_resolves_inside_at_send_time_is_refused_for_good(alerting, inside, dns, caplog):
    environment, _ = alerting
    dns.answers = [["127.0.0.2"]]  # saved while it resolved outside; now it points at an internal service
    delivery = webhook_delivery(environment, f"http://{NAME}:{inside.server.server_port}/services/T/B/secret-token")
    with caplog.at_level(logging.INFO):
        outcome, delivery = sent_once(delivery)
    assert outcome.status == "failed" and outcome.retry_in is None  # final: not retried
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert delivery.last_error == (f"webhook not sent, its URL is refused: {NAME} resolves to a loopback address")
    assert inside.host_headers == []  # not even connected to
    assert "(not retried)" in caplog.text and not any(record.exc_info for record in caplog.records)


def test_localhost_is_refused_at_send_time_without_the_allow_list(alerting, receiver, settings):
    environment, _ = alerting
    settings.WEBHOOK_ALLOWED_NETWORKS = []  # the receiver is reachable only through the allow-list
    port = receiver.server.server_port
    for url in [receiver.url, f"http://localhost:{port}/services/T000/B000/secret-token-xyz"]:
        outcome, delivery = sent_once(webhook_delivery(environment, url))
        assert (outcome.status, delivery.attempts) == ("failed", 1)
        assert "loopback" in delivery.last_error
    assert receiver.host_headers == []


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/iam/security-credentials/", "cloud metadata address"),
        ("http://[::ffff:169.254.169.254]/latest/", "cloud metadata address"),
        ("ftp://127.0.0.1/upload", "only http:// and https://"),
        ("http://hookuser:hunter2@127.0.0.1:9/hook?token=tok-secret-123456", "user name or password"),
    ],
)
def test_a_stored_url_that_is_refused_now_fails_at_once_without_secrets(alerting, settings, caplog, url, why):
    environment, _ = alerting
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    with caplog.at_level(logging.INFO):
        outcome, delivery = sent_once(webhook_delivery(environment, url))
    assert (outcome.status, delivery.status, delivery.attempts) == ("failed", "failed", 1)
    assert why in delivery.last_error
    for secret in ["hunter2", "hookuser", "tok-secret-123456", "security-credentials"]:
        assert secret not in delivery.last_error and secret not in caplog.text


def test_the_send_connects_to_the_address_it_checked_and_names_the_host(alerting, receiver, dns):
    environment, _ = alerting
    port = receiver.server.server_port
    # A rebinding name: outside (the allow-listed receiver) when checked, inside for any later lookup.
    dns.answers = [["127.0.0.1"], ["127.0.0.2"]]
    outcome, delivery = sent_once(webhook_delivery(environment, f"http://{NAME}:{port}/services/T/B/secret"))
    assert outcome.status == "sent" and len(receiver.posts) == 1
    assert dns.lookups == 1  # resolved once, connected to what was checked
    assert receiver.host_headers == [f"{NAME}:{port}"]  # the URL's host, not the pinned address
    # A name with any inside address is not trusted, even if another of its addresses is fine.
    dns.lookups, dns.answers = 0, [["127.0.0.1", "127.0.0.2"]]
    outcome, delivery = sent_once(webhook_delivery(environment, f"http://{NAME}:{port}/services/T/B/secret"))
    assert outcome.status == "failed" and "resolves to a loopback address" in delivery.last_error
    assert len(receiver.posts) == 1


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_not_followed_and_fails_for_good(alerting, receiver, inside, status, caplog):
    environment, _ = alerting
    receiver.answers = [status]
    receiver.location = f"http://127.0.0.2:{inside.server.server_port}/latest/meta-data/iam/security-credentials/"
    with caplog.at_level(logging.INFO):
        outcome, delivery = sent_once(webhook_delivery(environment, receiver.url))
    assert (outcome.status, delivery.status, delivery.attempts) == ("failed", "failed", 1)
    assert delivery.last_error == (
        f"webhook at 127.0.0.1 answered HTTP {status}, a redirect to http://127.0.0.2/…; redirects are not followed"
    )
    assert inside.host_headers == [] and receiver.posts == []
    assert "security-credentials" not in caplog.text and "secret-token-xyz" not in caplog.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/services/T000/B000/secret-token-xyz", b"no hook at /services/T000/B000/secret-token-xyz"),
        ("/services/T000/B000/secret-token-xyz", b"invalid_token secret-token-xyz"),
        ("/hook?token=tok-secret-123456", b"token=tok-secret-123456 is not valid for /hook?token=tok-secret-123456"),
    ],
)
def test_what_the_receiver_echoes_back_is_recorded_and_logged_without_the_secret(
    alerting, receiver, caplog, path, body
):
    environment, _ = alerting
    receiver.answers, receiver.body = [404], body
    url = f"http://127.0.0.1:{receiver.server.server_port}{path}"
    with caplog.at_level(logging.INFO):
        outcome, delivery = sent_once(webhook_delivery(environment, url))
    assert outcome.status == "pending"  # an HTTP error is retried as before
    assert delivery.last_error.startswith("webhook at 127.0.0.1 answered HTTP 404: ")
    assert "…" in delivery.last_error
    for secret in ["secret-token-xyz", "tok-secret-123456"]:
        assert secret not in delivery.last_error and secret not in caplog.text


def self_signed(name: str) -> tuple[bytes, bytes]:
    """A certificate (PEM) for `name` and its key: a TLS receiver the pinned connection must verify."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


@pytest.mark.parametrize(("certificate_for", "outcome"), [(NAME, "sent"), ("other.example.test", "pending")])
def test_https_keeps_sni_and_the_certificate_check_on_the_pinned_address(
    alerting, receiver, dns, monkeypatch, tmp_path, certificate_for, outcome
):
    import ssl

    environment, _ = alerting
    dns.answers = [["127.0.0.1"]]
    certificate, key = self_signed(certificate_for)
    (tmp_path / "cert.pem").write_bytes(certificate)
    (tmp_path / "key.pem").write_bytes(key)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server_names = []
    server_context.sni_callback = lambda sock, server_name, context: server_names.append(server_name)
    monkeypatch.setattr(outbound, "_tls_context", lambda: ssl.create_default_context(cadata=certificate.decode()))
    tls = Receiver()
    tls.server.handle_error = lambda *args: None  # the refused handshake of the wrong certificate
    tls.server.socket = server_context.wrap_socket(tls.server.socket, server_side=True)
    port = tls.server.server_port
    with tls:
        sent, delivery = sent_once(webhook_delivery(environment, f"https://{NAME}:{port}/services/T/B/secret"))
    assert sent.status == outcome and server_names == [NAME]
    if outcome == "sent":
        assert tls.host_headers == [f"{NAME}:{port}"] and len(tls.posts) == 1
    else:
        assert "CERTIFICATE_VERIFY_FAILED" in delivery.last_error and tls.posts == []
