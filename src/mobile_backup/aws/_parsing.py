"""DynamoDB's items read as JSON, not walked through botocore's model (issues 32 and 34);
and S3's HTTP dates parsed without dateutil (`fast_timestamp`).

botocore parses a JSON answer twice: `json.loads`, then a walk of the operation's output
shape that calls a handler for every value of every attribute of every item, only to give
back the same strings, numbers, maps and lists (an AttributeValue's blob, `B`, is the one
thing it changes: base64 to bytes). For a page of 1,000 ledger entries that walk was half
of the local API's CPU when listing files (py-spy, `status --json --all` over 20,000
entries: 941 of 1,888 samples in `BaseJSONParser._handle_map`).

`ItemsParserFactory` gives botocore a JSON parser that, for a member of an answer made only
of structures, lists and maps of strings, integers, booleans and AttributeValues (`Items`,
`Item`, `Attributes`, `LastEvaluatedKey`, `Responses`, `UnprocessedKeys`...), keeps what
`json.loads` made and decodes the blobs itself; every other member (timestamps, doubles:
`ConsumedCapacity`), every other answer and every error go through botocore as before. Which
members qualify is read from the service model, once per shape.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from botocore import parsers
from botocore.utils import parse_timestamp

# botocore's parser classes, as Any: their typing stubs leave out the methods overridden here.
_JSONParser: Any = parsers.JSONParser
_ResponseParserFactory: Any = parsers.ResponseParserFactory
Shape = Any  # botocore.model.Shape (StructureShape, ListShape, MapShape)

__all__ = ["ItemsParserFactory", "fast_timestamp"]

_PLAIN_SCALARS = frozenset({"string", "integer", "long", "boolean"})
_ATTRIBUTE_VALUE = "AttributeValue"
_verdicts: dict[int, tuple[Shape, bool]] = {}


def _as_loaded(shape: Shape, seen: frozenset[str] = frozenset()) -> bool:
    """Whether botocore's walk of `shape` gives back what `json.loads` gave, once the
    AttributeValues' blobs are decoded: no timestamps, doubles, blobs (but an
    AttributeValue's), documents or renamed members."""
    if shape.name == _ATTRIBUTE_VALUE or shape.name in seen:
        return True
    seen = seen | {shape.name}
    kind = shape.type_name
    if kind == "structure":
        if getattr(shape, "is_document_type", False):
            return False
        return all(
            member.serialization.get("name", name) == name and _as_loaded(member, seen)
            for name, member in shape.members.items()
        )
    if kind == "list":
        return _as_loaded(shape.member, seen)
    if kind == "map":
        return _as_loaded(shape.key, seen) and _as_loaded(shape.value, seen)
    return kind in _PLAIN_SCALARS


def _holds_items(shape: Shape) -> bool:
    """`_as_loaded`, and holding AttributeValues (else the walk is cheap): kept per shape."""
    found = _verdicts.get(id(shape))
    if found is not None and found[0] is shape:
        return found[1]
    verdict = _mentions(shape, frozenset()) and _as_loaded(shape)
    # (One store, safe across threads; the shape is kept so that its id stays its own.)
    _verdicts[id(shape)] = (shape, verdict)
    return verdict


def _mentions(shape: Shape, seen: frozenset[str]) -> bool:
    if shape.name == _ATTRIBUTE_VALUE:
        return True
    if shape.name in seen:
        return False
    seen = seen | {shape.name}
    kind = shape.type_name
    if kind == "structure":
        return any(_mentions(m, seen) for m in shape.members.values())
    if kind == "list":
        return _mentions(shape.member, seen)
    if kind == "map":
        return _mentions(shape.value, seen)
    return False


def _blobs_decoded(value: Any) -> Any:
    """`value` with each AttributeValue's `B` and `BS` decoded from base64, as botocore
    does. A dict of one key `B` with a string (or `BS` with a list) is an AttributeValue:
    nothing else in a DynamoDB answer has that form (maps of attributes hold
    AttributeValues, not strings)."""
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, inner),) = value.items()
            if key == "B" and isinstance(inner, str):
                return {"B": base64.b64decode(inner)}
            if key == "BS" and isinstance(inner, list):
                return {"BS": [base64.b64decode(b) for b in inner]}
        return {k: _blobs_decoded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_blobs_decoded(v) for v in value]
    return value


class _ItemsParser(_JSONParser):  # type: ignore[misc]
    def _handle_json_body(self, raw_body: bytes, shape: Shape | None) -> Any:
        if shape is None or shape.type_name != "structure":
            return super()._handle_json_body(raw_body, shape)
        members = shape.members
        if not any(_holds_items(m) for m in members.values()):
            return super()._handle_json_body(raw_body, shape)
        loaded = self._parse_body_as_json(raw_body)
        # No blob without its key: most answers need no second walk at all.
        blobs = (b'"B' if isinstance(raw_body, bytes) else '"B') in raw_body
        parsed: dict[str, Any] = {}
        for name, member in members.items():
            value = loaded.get(member.serialization.get("name", name))
            if value is None:
                continue
            if not _holds_items(member):
                value = self._parse_shape(member, value)
            elif blobs:
                value = _blobs_decoded(value)
            parsed[name] = value
        return parsed


# The tzinfo botocore gives an HTTP date (dateutil's `tzutc()`), taken from botocore itself.
_UTC = parse_timestamp("Thu, 01 Jan 1970 00:00:00 GMT").tzinfo
_ZERO = timedelta(0)


def fast_timestamp(value: Any) -> Any:
    """botocore's timestamp parser, with a fast path for the HTTP date S3 sends in headers
    (`Last-Modified` on every GET): 3 µs instead of dateutil's 45, for the same datetime
    (its UTC the same `_UTC`). Other forms go to botocore."""
    if isinstance(value, str) and value.endswith(" GMT"):
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            parsed = None
        if parsed is not None and parsed.utcoffset() == _ZERO:
            return parsed.replace(tzinfo=_UTC)
    return parse_timestamp(value)


class ItemsParserFactory(_ResponseParserFactory):  # type: ignore[misc]
    """botocore's parser factory, with `_ItemsParser` for the JSON protocol (DynamoDB) and
    `fast_timestamp` for every protocol."""

    def __init__(self) -> None:
        super().__init__()
        self.set_parser_defaults(timestamp_parser=fast_timestamp)

    def create_parser(self, protocol_name: str) -> Any:
        if protocol_name == "json":
            return _ItemsParser(**self._defaults)
        return super().create_parser(protocol_name)
