"""The ledger: the record of every member's files (DynamoDB, one table), the household's PCs
and members' folder names. The truth of what is backed up: SQS is only the fast path.

The package is the table's gateway: nothing else calls DynamoDB for it, and every call
leaves through the AWS boundary (`_table.py`).
"""

from __future__ import annotations

from mobile_backup.ledger._counts import Tally
from mobile_backup.ledger._ledger import Ledger, UnreservedUploadError
from mobile_backup.ledger._listings import AWAITING_INDEX, CHANGED_INDEX, TAKEN_INDEX
from mobile_backup.ledger._pcs import (
    HEARTBEAT_EVERY,
    MAIN_PC,
    PC_ATTRIBUTE,
    STALE_AFTER,
    PcInUseError,
    PcQueue,
    PcRecord,
    PcRegistry,
    check_pc_name,
    library_id,
)

__all__ = [
    "AWAITING_INDEX",
    "CHANGED_INDEX",
    "HEARTBEAT_EVERY",
    "MAIN_PC",
    "PC_ATTRIBUTE",
    "STALE_AFTER",
    "TAKEN_INDEX",
    "Ledger",
    "PcInUseError",
    "PcQueue",
    "PcRecord",
    "PcRegistry",
    "Tally",
    "UnreservedUploadError",
    "check_pc_name",
    "library_id",
]
