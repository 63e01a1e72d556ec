"""The local stack's DynamoDB fixes to moto (the list and the reasons are in
`_emulator_fixes.py`): item answers written as JSON at once, and a partition's query that
reads the partition instead of the whole table."""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

ITEM_OPERATIONS = frozenset(
    {"Query", "Scan", "GetItem", "BatchGetItem", "PutItem", "UpdateItem", "DeleteItem"}
)


def item_answer_json(result: dict[str, Any]) -> str:
    """An item operation's answer as DynamoDB's JSON protocol writes it."""

    def binary(value: object) -> str:
        if isinstance(value, bytes | bytearray):
            return base64.b64encode(value).decode("ascii")
        raise TypeError(f"{type(value).__name__} in a DynamoDB answer")

    return json.dumps(result, default=binary, separators=(",", ":"))


def item_answers_as_json() -> None:
    from moto.dynamodb import responses

    handler: Any = responses.DynamoHandler
    result_cls: Any = responses.DynamoResult
    if not callable(getattr(handler, "serialized", None)) or not callable(
        getattr(handler, "_get_action", None)
    ):
        raise RuntimeError("moto changed: DynamoHandler.serialized is gone; update this fix")
    serialize = handler.serialized

    def serialized(self: Any, action_result: Any) -> Any:
        result = action_result.result
        if (
            type(action_result) is result_cls
            and isinstance(result, dict)
            and self._get_action() in ITEM_OPERATIONS
        ):
            headers = {"Content-Type": JSON_1_0, **self.response_headers}
            return 200, headers, item_answer_json(result)
        return serialize(self, action_result)

    handler.serialized = serialized
    handler._serialized_by_moto = serialize  # for the test comparing the two


JSON_1_0 = "application/x-amz-json-1.0"
_QUERY_INDEX_ARG = 7  # Table.query(hash_key, ..., projection_expressions, index_name, ...)


def query_a_partition_by_its_items() -> None:
    import inspect

    from moto.dynamodb.models.table import Table

    table_cls: Any = Table
    query, all_items = table_cls.query, table_cls.all_items
    names = list(inspect.signature(query).parameters)
    if names[_QUERY_INDEX_ARG + 1] != "index_name" or names[1] != "hash_key":
        raise RuntimeError("moto changed: Table.query's arguments moved; update this fix")
    partition = threading.local()

    def items_of_the_partition(self: Any) -> Any:
        only = getattr(partition, "key", None)
        if only is None or only[0] is not self:
            return all_items(self)
        found = self.items.get(only[1])  # a defaultdict: .get creates nothing
        if found is None:
            return []
        return list(found.values()) if self.range_key_attr else [found]

    def query_partition(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index = args[_QUERY_INDEX_ARG - 1] if len(args) >= _QUERY_INDEX_ARG else None
        index = kwargs.get("index_name", index)
        if index is not None or hash_key is None:
            return query(self, hash_key, *args, **kwargs)
        partition.key = (self, hash_key)
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            partition.key = None

    table_cls.all_items = items_of_the_partition
    table_cls.query = query_partition
    _size_from_a_snapshot()


def _size_from_a_snapshot() -> None:
    """An item's size from a copy of its attributes: a query sizes each item it returns
    while another request may be updating that item in place (seen as "dictionary changed
    size during iteration" under load); `list(dict.items())` copies under the GIL."""
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.utilities import bytesize

    item_cls: Any = Item
    if not callable(getattr(item_cls, "size", None)):
        raise RuntimeError("moto changed: Item.size is gone; update this fix")

    def size(self: Any) -> int:
        return sum(bytesize(key) + value.size() for key, value in list(self.attrs.items()))

    item_cls.size = size
