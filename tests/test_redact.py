"""Secrets never reach logs or messages."""

from __future__ import annotations

import logging

import pytest

from sentinel_fetch.redact import (
    RedactingFilter,
    forget_secrets,
    redact,
    redact_url,
    register_secret,
)


@pytest.fixture(autouse=True)
def _clean_registry() -> None:
    forget_secrets()


def test_registered_secret_is_masked_everywhere_in_text() -> None:
    secret = "eyJhbGciOiJSUzI1NiJ9.payload.signature"
    register_secret(secret)
    text = f"token {secret} and again {secret}"
    assert redact(text) == "token *** and again ***"


def test_short_strings_are_not_treated_as_secrets() -> None:
    register_secret("abc")
    assert redact("abc abc") == "abc abc"


def test_redact_url_masks_proxy_password_and_token_parameter() -> None:
    assert (
        redact_url("http://bob:hunter22@proxy.example:3128") == "http://bob:***@proxy.example:3128"
    )
    masked = redact_url("https://dl.example/odata/v1/Products(x)/$value?token=abcdef123&x=1")
    assert "abcdef123" not in masked and "token=***" in masked and "x=1" in masked


def test_filter_cleans_messages_arguments_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    secret = "refresh-token-value-123456"
    register_secret(secret)
    logger = logging.getLogger("test.redact")
    handler = logging.StreamHandler()
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    collector = Collect()
    collector.addFilter(RedactingFilter())
    logger.addHandler(collector)
    try:
        logger.warning("got %s", secret)
        try:
            raise RuntimeError(f"failed with {secret}")
        except RuntimeError:
            logger.exception("boom")
    finally:
        logger.removeHandler(collector)
        handler.close()
    joined = "\n".join(records)
    assert secret not in joined
    assert joined.count("***") >= 2


def test_a_secret_is_masked_in_the_spellings_a_server_quotes_it_in() -> None:
    password = "p@ss word/ü&1"
    register_secret(password)
    form_body = "grant_type=password&password=p%40ss+word%2F%C3%BC%261"
    json_body = '{"password": "p@ss word/\\u00fc&1"}'
    for text in (form_body, json_body, f"raw {password}"):
        assert redact(text).count("***") == 1, text


def test_a_bearer_credential_is_masked_even_cut_short_or_unregistered() -> None:
    quoted = "Invalid header (Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjE3"
    assert redact(quoted) == "Invalid header (Authorization: Bearer ***"


def test_a_proxy_url_urlsplit_cannot_read_still_hides_its_password() -> None:
    assert redact_url("http://bob:hunter22@proxy.example:99999") == (
        "http://bob:***@proxy.example:99999"
    )
    assert "hunter22" not in redact_url("http://bob:hunter22@[::1")


def test_every_error_masks_its_message_when_made_and_when_shown() -> None:
    from sentinel_fetch.errors import ServiceError

    register_secret("early-secret-123")
    error = ServiceError("got early-secret-123 and late-secret-456", status=400)
    register_secret("late-secret-456")
    assert str(error) == "got *** and ***"
    assert "early-secret-123" not in repr(error) and "early-secret-123" not in error.args[0]


def test_the_password_stays_masked_through_a_week_of_token_refreshes() -> None:
    register_secret("the-account-password")
    for number in range(2000):  # a week of 10-minute tokens, access and refresh
        register_secret(f"eyJ-access-token-{number:05d}", rotating=True)
    assert redact("password=the-account-password") == "password=***"
    assert redact("token eyJ-access-token-01999") == "token ***"
