"""Sending one file in parts: start or resume, keep parts in flight, re-sign, complete.

The coordinator runs on its own thread and hands each part's PUT to the shared transfer
pool, keeping a bounded number in flight. Part URLs are signed just in time, at most
`MAX_PARTS_PER_REQUEST` per API call, and signed again when they are about to expire or S3
says they have. A part is noted in the journal the moment S3 accepts it; on a rerun the API
also lists what S3 holds, so a part accepted just before a crash is not sent again either.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait

from mobile_backup.client._api import HeldPart, MultipartTicket, PartUrl
from mobile_backup.client._engine import Engine, Prepared
from mobile_backup.client._journal import UPLOADING, JournalPart
from mobile_backup.client._parts import RangeBody, part_count, part_range
from mobile_backup.client._results import DUPLICATE, UPLOADED, FileResult
from mobile_backup.client._transfer import fresh_until, put_range
from mobile_backup.client.exceptions import (
    ApiError,
    FileChangedError,
    UploadError,
    UrlRejectedError,
)
from mobile_backup.core import CancelledError, MobileBackupError
from mobile_backup.instrument import crash_point

log = logging.getLogger(__name__)

# What the API answers for an upload this client cannot finish: expired or aborted under
# us, or begun by an older client with another CRC (or none).
_START_OVER = frozenset({"upload_not_found", "file_checksum_missing", "invalid_checksum"})

MAX_PARTS_PER_REQUEST = 100
# A part whose URL S3 refuses is signed again this many times before the file fails.
MAX_RESIGNS_PER_PART = 3
# Rounds of "complete; S3 misses parts; send them" before giving up on this run.
MAX_COMPLETE_ROUNDS = 3


class _Url:
    __slots__ = ("part", "until")

    def __init__(self, part: PartUrl, received: float) -> None:
        self.part = part
        self.until = fresh_until(part.url, received=received)


class MultipartJob:
    """Uploads one prepared file in parts; `run()` returns its result (never raises)."""

    def __init__(self, engine: Engine, prepared: Prepared) -> None:
        if prepared.hash.part_size is None:
            raise ValueError("a multipart upload needs the file's part hashes")
        self._e = engine
        self._p = prepared
        self._part_size: int = prepared.hash.part_size
        self._count = part_count(prepared.size, self._part_size)
        self._upload_id = ""
        self._urls: dict[int, _Url] = {}
        self._sent = 0
        self._sent_lock = threading.Lock()

    # Entry -----------------------------------------------------------------------------
    def run(self) -> FileResult:
        try:
            result = self._run()
        except FileChangedError as exc:
            # The parts held are of content that no longer exists: free them.
            self._abandon()
            result = self._e.failed(self._p, exc, bytes_sent=self._sent)
        except (MobileBackupError, OSError) as exc:
            result = self._e.failed(self._p, exc, bytes_sent=self._sent)
        return self._e.finish(result)

    def _run(self) -> FileResult:
        p, e = self._p, self._e
        for _restart in range(2):
            ticket = self._open()
            if ticket.status == DUPLICATE:
                e.journal.mark_done(p.hash.sha256, path=p.path, size=p.size)
                return self._result(DUPLICATE)
            todo = self._adopt(ticket)
            for _round in range(MAX_COMPLETE_ROUNDS):
                self._send(todo)
                try:
                    e.call(
                        e.api.complete_multipart,
                        sha256=p.hash.sha256,
                        upload_id=self._upload_id,
                        part_size=self._part_size,
                        checksums=p.hash.part_checksums,
                    )
                except ApiError as exc:
                    if exc.code == "upload_incomplete":
                        todo = self._missing()
                        continue
                    if exc.code in _START_OVER:  # start over once
                        break
                    raise
                crash_point("client.completed")
                e.journal.mark_done(p.hash.sha256, path=p.path, size=p.size)
                return self._result(UPLOADED)
            else:
                raise UploadError("S3 kept missing parts after completing; try again later")
            log.warning("upload of %s vanished on the server; starting over", p.path.name)
            e.journal.forget_upload(p.hash.sha256)
        raise UploadError("the server lost the upload twice; try again later")

    def _result(self, status: str) -> FileResult:
        p = self._p
        return FileResult(
            p.path,
            status,
            p.size,
            p.hash.sha256,
            seconds=time.monotonic() - p.queued_at,
            bytes_sent=self._sent,
        )

    # Start or resume ------------------------------------------------------------------
    def _first_batch(self, skip: set[int]) -> list[tuple[int, str]]:
        numbers = [n for n in range(1, self._count + 1) if n not in skip]
        return [(n, self._p.hash.part_checksum(n)) for n in numbers[:MAX_PARTS_PER_REQUEST]]

    def _open(self) -> MultipartTicket:
        p, e = self._p, self._e
        state = e.journal.upload(p.hash.sha256)
        if (
            state is not None
            and state.state == UPLOADING
            and state.upload_id
            and state.part_size == self._part_size
        ):
            known = set(e.journal.parts(state.upload_id))
            try:
                ticket = e.call(
                    e.api.sign_parts,
                    sha256=p.hash.sha256,
                    upload_id=state.upload_id,
                    part_size=self._part_size,
                    parts=self._first_batch(known),
                    include_completed=True,
                )
            except ApiError as exc:
                if exc.status != 404 and exc.code != "invalid_checksum":
                    raise
                # Gone, or begun by an older client with another CRC: start afresh.
                log.info("the server cannot resume the upload of %s", p.path.name)
                e.journal.forget_upload(p.hash.sha256)
            else:
                return ticket
        if p.hash.full_crc is None:  # hashed without parts: cannot happen for a multipart file
            raise UploadError(f"{p.path.name} was hashed without its parts; hash it again")
        ticket = e.call(
            e.api.start_multipart,
            p.request,
            full_checksum=p.hash.full_crc,
            algorithm=p.hash.checksum_algorithm,
            part_size=self._part_size,
            parts=self._first_batch(set()),
        )
        if ticket.status != DUPLICATE and ticket.part_size != self._part_size:
            raise UploadError(
                f"the API chose {ticket.part_size}-byte parts, not {self._part_size}; "
                "this client cannot send them"
            )
        return ticket

    def _adopt(self, ticket: MultipartTicket) -> list[int]:
        """Take the ticket's upload and URLs; return the part numbers still to send."""
        p, e = self._p, self._e
        if not ticket.upload_id:
            raise UploadError("the API returned no upload id")
        self._upload_id = ticket.upload_id
        e.journal.mark_uploading(
            p.hash.sha256,
            path=p.path,
            size=p.size,
            upload_id=self._upload_id,
            part_size=self._part_size,
        )
        held = self._held(ticket.completed or ())
        e.journal.replace_parts(self._upload_id, held.values())
        resumed = sum(part.size for part in held.values())
        if resumed:
            log.info("%s: %d of %d parts already held", p.path.name, len(held), self._count)
            e.resumed(p.path, resumed)
        now = time.monotonic()
        self._urls = {u.number: _Url(u, now) for u in ticket.parts if u.number not in held}
        return [n for n in range(1, self._count + 1) if n not in held]

    def _held(self, parts: Sequence[HeldPart]) -> dict[int, JournalPart]:
        held = {}
        for part in parts:
            if 1 <= part.number <= self._count:
                _, length = part_range(self._p.size, self._part_size, part.number)
                if part.size == length:
                    checksum = self._p.hash.part_checksum(part.number)
                    held[part.number] = JournalPart(part.number, part.size, part.etag, checksum)
        return held

    def _missing(self) -> list[int]:
        e = self._e
        ticket = e.call(
            e.api.sign_parts,
            sha256=self._p.hash.sha256,
            upload_id=self._upload_id,
            part_size=self._part_size,
            include_completed=True,
        )
        held = self._held(ticket.completed or ())
        self._e.journal.replace_parts(self._upload_id, held.values())
        return [n for n in range(1, self._count + 1) if n not in held]

    # Sending ---------------------------------------------------------------------------
    def _sign(self, numbers: list[int]) -> None:
        e = self._e
        ticket = e.call(
            e.api.sign_parts,
            sha256=self._p.hash.sha256,
            upload_id=self._upload_id,
            part_size=self._part_size,
            parts=[(n, self._p.hash.part_checksum(n)) for n in numbers],
        )
        if ticket.status == DUPLICATE:
            # Another device finished this content meanwhile: nothing left to send.
            raise _AlreadyBackedUp
        now = time.monotonic()
        self._urls.update((u.number, _Url(u, now)) for u in ticket.parts)

    def _url_for(self, number: int, pending: deque[int]) -> PartUrl:
        url = self._urls.pop(number, None)
        if url is not None and time.monotonic() < url.until:
            return url.part
        # Sign this part and the next ones that need it, in one call.
        batch = [number]
        for n in pending:
            if len(batch) >= MAX_PARTS_PER_REQUEST:
                break
            known = self._urls.get(n)
            if n != number and (known is None or time.monotonic() >= known.until):
                batch.append(n)
        self._sign(batch)
        return self._urls.pop(number).part

    def _send(self, todo: list[int]) -> None:
        e = self._e
        pending = deque(todo)
        inflight: dict[Future[None], int] = {}
        resigned: dict[int, int] = {}
        failure: BaseException | None = None
        try:
            while (pending or inflight) and failure is None:
                while pending and len(inflight) < e.parts_in_flight and not e.cancel.is_set():
                    number = pending.popleft()
                    url = self._url_for(number, pending)
                    inflight[e.pool().submit(self._put_part, number, url)] = number
                if not inflight:
                    break
                done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                for future in done:
                    number = inflight.pop(future)
                    try:
                        future.result()
                    except UrlRejectedError as exc:
                        resigned[number] = resigned.get(number, 0) + 1
                        if resigned[number] > MAX_RESIGNS_PER_PART:
                            failure = exc
                        else:
                            log.info("part %d: URL refused, signing it again", number)
                            pending.appendleft(number)
                    except BaseException as exc:
                        failure = failure or exc
        except _AlreadyBackedUp:
            pending.clear()
        finally:
            # Let parts in flight finish (they are noted as done); start no more.
            if inflight:
                wait(inflight)
        if failure is not None:
            raise failure
        if e.cancel.is_set() and pending:
            raise CancelledError("stopped")

    def _put_part(self, number: int, url: PartUrl) -> None:
        e, p = self._e, self._p
        if e.cancel.is_set():
            raise CancelledError("stopped")
        offset, length = part_range(p.size, self._part_size, number)

        def once() -> str:
            body = RangeBody(
                p.path,
                offset=offset,
                length=length,
                stamp=p.hash.stamp,
                on_chunk=lambda n: e.progress(p.path, n),
            )
            try:
                resp = put_range(e.http, url=url.url, headers=url.headers, body=body)
            except BaseException:
                e.progress(p.path, -body.sent)  # the attempt's bytes are not kept
                raise
            return str(resp.headers.get("etag", ""))

        etag = e.call(once)
        crash_point("client.part_sent")
        # Noted at once: the smaller the gap between S3's answer and this note, the fewer
        # parts a crash can leave for the API's listing to catch.
        e.journal.part_done(
            self._upload_id, JournalPart(number, length, etag, p.hash.part_checksum(number))
        )
        crash_point("client.part_journaled")
        with self._sent_lock:
            self._sent += length

    def _abandon(self) -> None:
        if not self._upload_id:
            return
        try:
            self._e.api.abort_multipart(sha256=self._p.hash.sha256, upload_id=self._upload_id)
        except MobileBackupError as exc:  # the bucket's lifecycle rule cleans up after a day
            log.info("could not abort the upload of %s: %s", self._p.path.name, exc)
        self._e.journal.forget_upload(self._p.hash.sha256)


class _AlreadyBackedUp(Exception):
    """Signing parts revealed the content is backed up already."""
