"""Batches: cutting a list into pieces, and SQS's ten-at-a-time limit."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

SQS_BATCH = 10
"""SQS's limit per ReceiveMessage / DeleteMessageBatch / ChangeMessageVisibilityBatch."""


def chunked(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """`items` in consecutive lists of at most `size`."""
    for i in range(0, len(items), size):
        yield list(items[i : i + size])
