"""Secrets and markup in text the CLI and the logs show (core/_redact.py, commands.safe)."""

from __future__ import annotations

import logging

from rich.console import Console

from mobile_backup.commands._common import safe
from mobile_backup.core import RedactingFilter, redact

URL = (
    "https://b.s3.amazonaws.com/media/u/h?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=ASIAXYZ%2F20261128%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Security-Token=IQoJb3JpZ2luX2VjEJr%2F&X-Amz-Signature=0123abcd&x-id=PutObject"
)


def test_presigned_url_credentials_and_bearer_tokens_are_blanked() -> None:
    text = redact(f"PUT {URL} 'Authorization: Bearer eyJraWQiOi.eyJzdWIi.c2ln'")
    for secret in ("ASIAXYZ", "IQoJb3JpZ2lu", "0123abcd", "eyJraWQiOi"):
        assert secret not in text
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in text  # what is not secret stays readable
    assert "x-id=PutObject" in text
    assert redact("nothing to hide") == "nothing to hide"


def test_the_logging_filter_redacts_messages_arguments_and_tracebacks() -> None:
    record = logging.LogRecord("httpx", logging.INFO, __file__, 1, "HTTP Request: %s", (URL,), None)
    assert RedactingFilter().filter(record)
    assert "0123abcd" not in record.getMessage()
    try:
        raise RuntimeError(f"failed for url {URL}")
    except RuntimeError:
        import sys

        failed = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", (), sys.exc_info())
    RedactingFilter().filter(failed)
    assert failed.exc_text is not None
    assert "0123abcd" not in failed.exc_text


def test_names_that_look_like_markup_print_as_themselves() -> None:
    console = Console(record=True, width=200)
    for name in ("a[/red].jpg", "x[/]y.png", "[bold]z.mp4"):
        console.print(f"[red]✗[/] {safe(name)}: {safe('refused [/b]')}")
        assert f"✗ {name}: refused [/b]" in console.export_text()
