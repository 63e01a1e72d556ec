"""What the API does, without HTTP: plan uploads and list a user's files.

Every method takes the verified `Principal`; the user part of every key and ledger entry
comes from it and never from the request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import wait
from datetime import datetime, timedelta

from mobile_backup.api._auth import Principal
from mobile_backup.api._members import MemberFolders
from mobile_backup.aws import Bucket
from mobile_backup.core import (
    FileStatus,
    LazyPool,
    hex_to_b64,
    may_free,
    object_key,
    thumb_key,
)
from mobile_backup.core.wire import (
    CHECKSUM_HEADER,
    CheckResponse,
    FilesPage,
    FilesSummary,
    FileView,
    LookupRequest,
    LookupResponse,
    LookupResult,
    PcView,
    PresignedUpload,
    StatusesPage,
    ThumbUploadRequest,
    ThumbUploads,
    ThumbUrlRequest,
    ThumbUrls,
    UploadFile,
    UploadRequest,
    UploadResponse,
    UploadResult,
)
from mobile_backup.ledger import STALE_AFTER, Ledger, Tally

logger = logging.getLogger(__name__)

_ALREADY_BACKED_UP = frozenset({FileStatus.UPLOADED, FileStatus.DOWNLOADED})
_KNOWN = frozenset(str(s) for s in FileStatus)
# Reservations in flight at once, across the process: one pool shared by every service, so
# the thread count stays bounded however many resolvers exist (the local ASGI server has 8),
# and below the boto3 client's 32 pooled connections.
RESERVE_WORKERS = 16
_reserve_pool = LazyPool(RESERVE_WORKERS, "reserve")
"""The process's request threads (reservations, reads beside a page)."""


class UploadService:
    """Turns an upload request into `duplicate` answers and presigned single-part PUTs.

    The PUT signs `Content-Length`, `Content-Type` and `x-amz-checksum-sha256`, so S3
    accepts exactly the declared bytes under `media/{sub}/{sha256}` and nothing else.
    """

    def __init__(
        self,
        *,
        ledger: Ledger,
        objects: Bucket,
        clock: Callable[[], datetime],
        expiry_seconds: int,
        members: MemberFolders | None = None,
    ) -> None:
        self._members = members
        self._ledger = ledger
        self._objects = objects
        self._clock = clock
        self._expiry = expiry_seconds

    def plan(self, principal: Principal, request: UploadRequest) -> UploadResponse:
        """Say, per entry and in order, whether to upload (reserving it) or it is a duplicate.

        One batch read of the ledger finds the files already backed up; only the others are
        reserved, each by its own conditional write (so a file that became uploaded since the
        read still comes back a duplicate), several at a time.
        """
        now = self._clock()
        # A repeated digest gets the first entry's answer: one reservation, one URL.
        unique: dict[str, UploadFile] = {}
        for item in request.files:
            unique.setdefault(item.sha256, item)
        known = self._ledger.get_many(principal.sub, unique)
        answers: dict[str, UploadResult] = {}
        fresh: list[UploadFile] = []
        for sha256, item in unique.items():
            record = known.get(sha256)
            if record is not None and record.status in _ALREADY_BACKED_UP:
                answers[sha256] = UploadResult(sha256=sha256, status="duplicate")
            else:
                fresh.append(item)
        absent = {sha256 for sha256 in unique if sha256 not in known}
        results = self._reserve_all(principal, fresh, now, absent)
        for item, result in zip(fresh, results, strict=True):
            answers[item.sha256] = result
        return UploadResponse(results=[answers[item.sha256] for item in request.files])

    def _reserve_all(
        self, principal: Principal, items: list[UploadFile], now: datetime, absent: set[str]
    ) -> list[UploadResult]:
        """`_plan_one` for each item, in order; several at once when there are several.

        Safe to run concurrently: each call writes its own ledger item, and boto3 clients
        are thread-safe. Each write is a network round trip, so threads overlap the waits.
        """
        if not items:
            return []
        # Settled once per request, before the writes fan out (a first upload claims it).
        owner = self._members.folder(principal) if self._members else None
        if len(items) == 1:
            return [self._plan_one(principal, items[0], now, owner, absent)]
        # The batch's count changes are written once, after its reservations (one `ADD`
        # instead of one per file), whatever became of them.
        tally = Tally()
        pool = _reserve_pool()
        futures = [
            pool.submit(self._plan_one, principal, item, now, owner, absent, tally)
            for item in items
        ]
        try:
            # .result() re-raises a failed reservation's error (the others are idempotent).
            return [future.result() for future in futures]
        finally:
            wait(futures)
            self._ledger.write_tally(tally)

    def list_files(
        self,
        principal: Principal,
        *,
        limit: int,
        cursor: str | None = None,
        by_taken: bool = False,
        before: datetime | None = None,
    ) -> FilesPage:
        """One page of the caller's own files: in content-id order, or newest capture time
        first (`by_taken`, from the files taken before `before`). `as_of`: when this read
        began (by the API's clock)."""
        now = self._clock()
        audits = _reserve_pool().submit(self._pc_audits)  # read beside the page
        if by_taken:
            records, next_cursor = self._ledger.list_by_taken(
                principal.sub, limit=limit, cursor=cursor, before=before
            )
        else:
            records, next_cursor = self._ledger.list_files(
                principal.sub, limit=limit, cursor=cursor
            )
        pcs = audits.result()
        files = [FileView.from_record(r, may_free(r, pcs, now=now)) for r in records]
        return FilesPage(files=files, next_cursor=next_cursor, as_of=now)

    def list_changed(
        self, principal: Principal, *, since: datetime, limit: int, cursor: str | None = None
    ) -> FilesPage:
        """One page of the caller's files whose entry changed after `since`, oldest change
        first; `as_of` is when this read began (by the API's clock), for the next one."""
        as_of = self._clock()
        audits = _reserve_pool().submit(self._pc_audits)  # read beside the page
        records, next_cursor = self._ledger.list_changed(
            principal.sub, since=since, limit=limit, cursor=cursor
        )
        pcs = audits.result()
        files = [FileView.from_record(r, may_free(r, pcs, now=as_of)) for r in records]
        return FilesPage(files=files, next_cursor=next_cursor, as_of=as_of)

    def statuses(
        self, principal: Principal, *, prefix: str = "", cursor: str | None = None
    ) -> StatusesPage:
        """One page of the caller's entries as content -> status, of the contents whose id
        starts with `prefix` (`Ledger.statuses_page`); `as_of` is when this read began (by
        the API's clock)."""
        as_of = self._clock()
        statuses, next_cursor = self._ledger.statuses_page(
            principal.sub, prefix=prefix, cursor=cursor
        )
        return StatusesPage(
            # A status this version does not know reads as not backed up, as `lookup` says.
            statuses={sha: FileStatus(st) for sha, st in statuses.items() if st in _KNOWN},
            next_cursor=next_cursor,
            as_of=as_of,
        )

    def _pc_audits(self) -> dict[str, datetime | None]:
        """When each registered PC last checked its copies (what `may_free` weighs)."""
        return {pc.name: pc.audited_at for pc in self._ledger.pc_registry().all()}

    def summary(self, principal: Principal, *, recent: int) -> FilesSummary:
        """The caller's counts by status and their `recent` newest files."""
        counts, records = self._ledger.summary(principal.sub, recent=recent, now=self._clock())
        pcs = {pc.name: pc.audited_at for pc in self._ledger.pc_registry().all()}
        now = self._clock()
        return FilesSummary(
            total=sum(counts.values()),
            counts={status: counts.get(status, 0) for status in FileStatus},
            recent=[FileView.from_record(r, may_free(r, pcs, now=now)) for r in records],
        )

    def lookup(
        self, principal: Principal, request: LookupRequest, *, verdicts: bool = True
    ) -> LookupResponse:
        """Whether each content is backed up, without reserving anything (`upload --dry-run`);
        with `verdicts`, whether it may be freed from the phone (free-up) too."""
        if not verdicts:  # each entry's status alone: a tenth of what a verdict reads
            now = self._clock()
            statuses = self._ledger.statuses(principal.sub, request.sha256)
            return LookupResponse(
                results=[
                    LookupResult(
                        sha256=sha,
                        backed_up=statuses.get(sha) in _ALREADY_BACKED_UP,
                        on_pc=statuses.get(sha) == FileStatus.DOWNLOADED,
                    )
                    for sha in request.sha256
                ],
                as_of=now,
            )
        pcs = {pc.name: pc.audited_at for pc in self._ledger.pc_registry().all()}
        # Only what the verdict weighs (every PC that ever wrote a receipt is registered).
        now = self._clock()  # before the read: its answers hold from then on
        known = self._ledger.get_many(principal.sub, request.sha256, receipts_of=pcs)
        results = []
        for sha256 in request.sha256:
            record = known.get(sha256)
            status = record.status if record is not None else None
            verdict = may_free(record, pcs, now=now)
            results.append(
                LookupResult(
                    sha256=sha256,
                    backed_up=status in _ALREADY_BACKED_UP,
                    on_pc=status == FileStatus.DOWNLOADED,
                    deletable=verdict.deletable,
                    reason=verdict.reason,
                )
            )
        return LookupResponse(results=results, as_of=now)

    def request_check(self, principal: Principal) -> CheckResponse:
        """Ask the household's PCs to check their copies now (the app's "Check now").

        Any member may ask: a check reads only the asking PC's own disk and ledger entries,
        and a PC runs at most one at a time.
        """
        now = self._clock()
        asked = self._ledger.pc_registry().request_check(now)
        logger.info("a member asked %d PC(s) to check their copies", len(asked))
        pcs = [
            PcView(
                name=pc.name,
                running=pc.seen_at is not None and now - pc.seen_at <= STALE_AFTER,
                seen_at=pc.seen_at,
                audited_at=pc.audited_at,
            )
            for pc in asked
        ]
        return CheckResponse(requested_at=now, pcs=pcs)

    def thumb_uploads(self, principal: Principal, request: ThumbUploadRequest) -> ThumbUploads:
        """Presigned PUTs for thumbnails of files the ledger has for the caller (the PUT signs
        the length and the SHA-256: S3 takes those bytes only, as a JPEG, under the
        caller's own `thumbs/` prefix)."""
        known = self._ledger.get_many(principal.sub, [t.sha256 for t in request.thumbs])
        now = self._clock()
        uploads = {}
        for thumb in request.thumbs:
            if thumb.sha256 not in known:
                continue
            url = self._objects.presign_put(
                thumb_key(principal.sub, thumb.sha256),
                length=thumb.size,
                content_type="image/jpeg",
                sha256_b64=thumb.checksum,
                expires_s=self._expiry,
            )
            uploads[thumb.sha256] = PresignedUpload(
                url=url,
                headers={
                    "Content-Length": str(thumb.size),
                    "Content-Type": "image/jpeg",
                    CHECKSUM_HEADER: thumb.checksum,
                },
                expires_at=now + timedelta(seconds=self._expiry),
            )
        return ThumbUploads(uploads=uploads)

    def thumb_urls(self, principal: Principal, request: ThumbUrlRequest) -> ThumbUrls:
        """Presigned GETs of the caller's own thumbnails of files the ledger has for them."""
        known = self._ledger.get_many(principal.sub, request.sha256)
        urls = {
            sha: self._objects.presign_get(thumb_key(principal.sub, sha), expires_s=self._expiry)
            for sha in request.sha256
            if sha in known
        }
        return ThumbUrls(urls=urls, expires_at=self._clock() + timedelta(seconds=self._expiry))

    def _plan_one(
        self,
        principal: Principal,
        item: UploadFile,
        now: datetime,
        owner: str | None,
        absent: set[str],
        tally: Tally | None = None,
    ) -> UploadResult:
        record = self._ledger.reserve(
            principal.sub, item.meta(), now=now, owner_name=owner,
            absent=item.sha256 in absent, tally=tally,
        )  # fmt: skip
        if record.status in _ALREADY_BACKED_UP:
            return UploadResult(sha256=item.sha256, status="duplicate")
        return UploadResult(
            sha256=item.sha256, status="upload", upload=self._presign(principal, item, now)
        )

    def _presign(self, principal: Principal, item: UploadFile, now: datetime) -> PresignedUpload:
        checksum = hex_to_b64(item.sha256)
        url = self._objects.presign_put(
            object_key(principal.sub, item.sha256),
            length=item.size,
            content_type=item.content_type,
            sha256_b64=checksum,
            expires_s=self._expiry,
        )
        return PresignedUpload(
            url=url,
            headers={
                "Content-Length": str(item.size),
                "Content-Type": item.content_type,
                CHECKSUM_HEADER: checksum,
            },
            expires_at=now + timedelta(seconds=self._expiry),
        )
