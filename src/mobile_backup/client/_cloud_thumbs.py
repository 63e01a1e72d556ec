"""The member's thumbnails in the cloud: the app keeps one for each photo it backs up, and
any device the member signs into shows them, after the photo has left the phone and its own
copy has expired from the cloud.

Best effort both ways: a thumbnail that cannot be kept or read is a placeholder in the
gallery, never a failed backup. Only the member's own, through presigned URLs the API makes
for files the ledger has for them (`POST /v1/thumbs`, `POST /v1/thumbs/urls`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from mobile_backup.client._api import ApiClient
from mobile_backup.core import MobileBackupError
from mobile_backup.media import is_picture, make_thumbnail

log = logging.getLogger(__name__)

BATCH = 100


class CloudThumbs:
    """Keeps thumbnails in the cloud and reads them back; `api` gives the signed-in
    member's API client at the moment of the call."""

    def __init__(self, api: Callable[[], ApiClient], *, timeout: float = 20.0) -> None:
        self._api = api
        self._http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def keep(self, thumbs: Sequence[tuple[str, bytes]]) -> int:
        """Put these (content id, JPEG) in the cloud; how many were kept."""
        kept = 0
        for start in range(0, len(thumbs), BATCH):
            batch = thumbs[start : start + BATCH]
            try:
                uploads = self._api().thumb_uploads(batch)
            except MobileBackupError as exc:
                log.info("thumbnails not kept in the cloud: %s", exc)
                return kept
            for sha, data in batch:
                upload = uploads.get(sha)
                if upload is None:
                    continue
                try:
                    resp = self._http.put(upload.url, content=data, headers=upload.headers)
                except httpx.HTTPError as exc:
                    log.info("a thumbnail was not kept in the cloud: %s", exc)
                    continue
                if resp.is_success:
                    kept += 1
                else:
                    log.info("the cloud refused a thumbnail: HTTP %d", resp.status_code)
        return kept

    def fetch(self, sha256s: Sequence[str]) -> dict[str, bytes]:
        """The member's thumbnails of these files that the cloud has."""
        found: dict[str, bytes] = {}
        for start in range(0, len(sha256s), BATCH):
            try:
                urls = self._api().thumb_urls(sha256s[start : start + BATCH])
            except MobileBackupError as exc:
                log.info("thumbnails not read from the cloud: %s", exc)
                return found
            for sha, url in urls.items():
                try:
                    resp = self._http.get(url)
                except httpx.HTTPError as exc:
                    log.info("a thumbnail was not read from the cloud: %s", exc)
                    continue
                if resp.is_success and resp.content:
                    found[sha] = resp.content
        return found


def keep_thumbnails(
    api: Callable[[], ApiClient],
    files: Sequence[tuple[str, Path]],
    *,
    workers: int = 2,
    on_kept: Callable[[int], None] | None = None,
) -> int:
    """Make a thumbnail of each picture among `files` (content id, path) and keep it in the
    cloud, as the app does for what it backs up (`upload` from a computer, so the gallery
    shows those photos too); how many were kept. A hundred at a time (memory stays small
    for a folder of years); `on_kept` is told each batch's count. Best effort: a picture
    that cannot be read, or a cloud that cannot be reached, only means a placeholder."""
    pictures = [(sha, path) for sha, path in files if is_picture(path)]
    if not pictures:
        return 0
    cloud = CloudThumbs(api)
    kept = 0
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="thumbnail") as pool:
            for start in range(0, len(pictures), BATCH):
                batch = pictures[start : start + BATCH]
                made = pool.map(lambda item: make_thumbnail(item[1]), batch)
                thumbs = [(sha, data) for (sha, _), data in zip(batch, made, strict=True) if data]
                done = cloud.keep(thumbs)
                kept += done
                if on_kept is not None:
                    on_kept(len(batch))
    finally:
        cloud.close()
    return kept
