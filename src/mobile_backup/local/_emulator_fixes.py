"""Where moto is laxer than AWS in a way our invariants depend on, the local stack makes it
strict. Each fix is small, checked against the moto it patches, and tested
(`tests/integration/test_emulator_fixes.py`).

- **Full-object checksums at CompleteMultipartUpload.** S3 refuses to assemble a multipart
  upload created with `ChecksumType=FULL_OBJECT` when the checksum the client declares at
  completion is not the assembled object's (`BadDigest`); moto 5 computes the object's
  checksum but never compares. Without this, the local stack would answer "uploaded" for
  an object whose parts do not make the declared file.
- **SQS receive in O(1) per message.** moto checks each delivered message's retention by
  building the queue's whole attribute dictionary, which counts every message in the queue:
  a receive from a queue of 1,000 messages cost ~0.5 s of emulator CPU (issue 15's profile).
  The same check reads the one attribute it needs. Not a behaviour change, only the cost.
- **Routing without listing moto's package.** moto's server routes every request by asking
  whether the service name is one of its modules, which lists its package folder (about 250
  entries, each `stat`ed) on every request, under the lock that serialises routing. The
  list is read once; it cannot change while the process runs.
- **A response class's methods listed once.** To dispatch each request, moto lists every
  member of the service's response class (`inspect.getmembers`, hundreds of attributes) to
  see whether the action is one of its methods: ~6 % of the emulator's time per request
  (a GetItem). Classes do not gain or lose methods while the server runs (the fixes here
  are installed before it starts), so the list is kept per class.
- **Each update expression parsed once.** moto tokenises and parses an UpdateItem's
  expression twice per call (once to check the names used, once to run it): about 40 % of
  its UpdateItem time, and the agent's receipts are all one expression. Parses are kept by
  the expression's text; every user of the tree only reads it (the validator works on its
  own deep copy), so the answers are the same.
- **Update validation without rebuilding its tables.** Each of the ten passes that validate
  and run an update expression rebuilt its node-type table (a dict of bound methods) twice
  for every node it visited, and the validator deep-copied the parsed tree with `deepcopy`.
  The table is built once per pass; the tree is copied by a pickle round trip (about a
  quarter of the time; anything that will not pickle still goes through `deepcopy`). With
  the parse cache, UpdateItem was still ~38 % of the emulator's CPU in B4's burst (three
  per file: the ingest's two and the agent's receipt). The passes' walks, and the clause
  search the checks run several times per call, also asked `isinstance` against moto's
  abstract node classes at every node (1,896 checks for one update of five actions); each
  answer is now kept per node type (and per pass): ~265 checks, and a third less of the
  emulator's time per receipt UpdateItem. Only the cost changes.
- **Visible messages found with one reading of the clock.** Every receive lists the queue's
  visible messages, and moto read the clock twice per message in the queue to do it (is it
  visible, is it delayed): with 1,000 messages queued, a receive of 10 cost ~20 ms of
  emulator CPU, over half of it reading the clock. One reading per receive gives the same
  list (4-7 ms; 6 ms with 10,000 queued).
- **Concurrent receives do not fail.** Every receive lists the message groups in flight by
  iterating the queue's set of in-flight messages, which another receive may be adding to
  at that moment: `RuntimeError: Set changed size during iteration`, a 500 to the client
  (seen twice in a B1 run on a loaded host, where the agent's receivers overlap). The list
  is made from a snapshot of the set; SQS answers concurrent receives.
- **Queue counts with one reading of the clock.** moto builds a queue's whole attribute
  dictionary, with its counts of delayed and in-flight messages, for every SendMessage
  (only to read `ContentBasedDeduplication`), and counted them by reading the clock twice
  per message in the queue: with 1,000 queued, one send cost 12-25 ms of emulator CPU, so
  a backlog (a phone's first backup while the PC is off) grew quadratically. The counts now
  read the clock once each: 1.4-4 ms with 1,000 queued, the same numbers.
- **Random strings drawn in one call.** Every message received gets a new receipt handle
  of 185 random letters, and every response a request id of 52, which moto drew one
  `choice` call at a time: ~0.5 ms of emulator CPU per message received and ~0.13 ms per
  request. The same alphabets and lengths from moto's own (seedable) generator, in one
  `choices` call each.
- **Cognito's**, in `_emulator_fixes_cognito.py`: an app client's write attributes, and
  the MFA set-up a pool that requires MFA asks of a member without a second factor.
- **Item answers written as JSON at once.** moto 5 walks each DynamoDB answer through its
  generic serializer, attribute by attribute against the service model (more than half of
  the emulator's time in a listing of a member's ledger); an answer of an item operation
  (Query, Scan, GetItem, BatchGetItem, PutItem, UpdateItem, DeleteItem) is already in the
  wire's shape, and is now written with `json.dumps` (binary values in base64, as the
  serializer writes them). Every other answer, and every error, goes the serializer's way.
- **A partition's query reads the partition.** moto answered a query on the table (not an
  index) by sorting every item of the table and keeping the partition's: each page of a
  member's ledger, and each read of the PC registry, cost the whole table. It now reads the
  partition's own items (the order it then sorts them in, and everything after, is moto's).
- **A batch delete in one pass.** moto deleted each of a batch's receipt handles with two
  scans of the whole queue; the fix scans once for the batch. Handles deleted before still
  succeed and unknown handles still fail with `ReceiptHandleIsInvalid`, entry by entry.
"""

from __future__ import annotations

import copy
import functools
import pickle
import threading
from typing import Any

from mobile_backup.local._emulator_fixes_cognito import (
    enforce_client_write_attributes,
    require_mfa_setup_at_password_sign_in,
)
from mobile_backup.local._emulator_fixes_dynamodb import (
    item_answers_as_json,
    query_a_partition_by_its_items,
)

_patched = threading.Lock()
_applied = False


def apply_emulator_fixes() -> None:
    """Install every fix once per process (moto's state and classes are process-wide)."""
    global _applied
    with _patched:
        if _applied:
            return
        _enforce_full_object_checksums()
        _retention_check_in_constant_time()
        _route_without_listing_the_package()
        _list_response_methods_once()
        _parse_each_update_expression_once()
        _validate_updates_without_rebuilding_tables()
        _queue_views_with_one_clock_read()
        _pending_groups_from_a_snapshot()
        _delete_a_batch_in_one_pass()
        _random_strings_in_one_draw()
        item_answers_as_json()
        query_a_partition_by_its_items()
        enforce_client_write_attributes()
        require_mfa_setup_at_password_sign_in()
        _applied = True


def _enforce_full_object_checksums() -> None:
    from moto.s3 import models, responses
    from moto.s3.exceptions import S3ClientError

    response_cls: Any = responses.S3Response
    multipart_cls: Any = models.FakeMultipart
    for cls, name in ((response_cls, "_complete_multipart_body"), (multipart_cls, "complete")):
        if not callable(getattr(cls, name, None)):  # a moto that moved them: fail loudly
            raise RuntimeError(f"moto changed: {cls.__name__}.{name} is gone; update this fix")
    declared = threading.local()
    parse_body = response_cls._complete_multipart_body
    assemble = multipart_cls.complete

    def remember_declared(self: Any, body: bytes) -> Any:
        # Runs in the request's thread right before the backend assembles the parts.
        declared.headers = {
            k.lower(): v for k, v in self.headers.items() if k.lower().startswith("x-amz-checksum-")
        }
        return parse_body(self, body)

    def complete_checked(self: Any, body: Any) -> Any:
        value, etag, details = assemble(self, body)
        headers, declared.headers = getattr(declared, "headers", {}), {}
        algorithm = self.metadata.get("x-amz-checksum-algorithm")
        if details and algorithm and details[0] == "FULL_OBJECT":
            want = headers.get(f"x-amz-checksum-{algorithm.lower()}")
            if want is not None and want != details[1]:
                raise S3ClientError(
                    "BadDigest",
                    f"The {algorithm} you specified did not match the calculated checksum.",
                )
        return value, etag, details

    response_cls._complete_multipart_body = remember_declared
    multipart_cls.complete = complete_checked


def _retention_check_in_constant_time() -> None:
    from moto.core.utils import unix_time
    from moto.sqs import models

    backend_cls: Any = models.SQSBackend
    if not callable(getattr(backend_cls, "is_message_valid_based_on_retention_period", None)):
        raise RuntimeError("moto changed: SQSBackend's retention check is gone; update this fix")

    def is_message_valid_based_on_retention_period(
        self: Any, queue_name: str, message: Any
    ) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > unix_time())

    backend_cls.is_message_valid_based_on_retention_period = (
        is_message_valid_based_on_retention_period
    )


def _route_without_listing_the_package() -> None:
    from moto import backends

    listing: Any = getattr(backends, "list_of_moto_modules", None)
    if not callable(listing):
        raise RuntimeError("moto changed: backends.list_of_moto_modules is gone; update this fix")
    modules = frozenset(listing())

    def list_of_moto_modules() -> frozenset[str]:
        return modules

    backends.list_of_moto_modules = list_of_moto_modules


def _list_response_methods_once() -> None:
    from moto.core import responses

    module: Any = responses
    listing: Any = getattr(module, "method_names_from_class", None)
    if not callable(listing):
        raise RuntimeError("moto changed: method_names_from_class is gone; update this fix")
    module.method_names_from_class = functools.cache(listing)


def _parse_each_update_expression_once() -> None:
    from moto.dynamodb.parsing import expressions

    parser: Any = getattr(expressions, "UpdateExpressionParser", None)
    make = getattr(parser, "make", None)
    if not callable(make):
        raise RuntimeError("moto changed: UpdateExpressionParser.make is gone; update this fix")

    # A syntax error raises and is not kept, so it is raised again on the next call.
    @functools.lru_cache(maxsize=1024)
    def parse(expression: str) -> Any:
        return make(expression)

    def cached_make(cls: Any, expression: str) -> Any:
        return parse(expression)

    parser.make = classmethod(cached_make)


def _validate_updates_without_rebuilding_tables() -> None:
    from moto.dynamodb.parsing import ast_nodes
    from moto.dynamodb.parsing import validators as validators_module

    traverser, node_type = _update_traversal(ast_nodes, validators_module)
    _process_each_node_type_once(traverser, node_type)
    _find_clauses_by_type(node_type, ast_nodes)
    _copy_trees_by_pickling(validators_module, node_type)


def _update_traversal(ast_nodes: Any, validators: Any) -> tuple[Any, Any]:
    """moto's update-expression traversal, checked to be what these fixes replace."""
    traverser: Any = getattr(ast_nodes, "DepthFirstTraverser", None)
    node_type: Any = getattr(ast_nodes, "Node", None)
    if (
        traverser is None
        or node_type is None
        or not callable(getattr(node_type, "find_clauses", None))
        or not all(hasattr(ast_nodes, n) for n in ("Expression", "UpdateExpressionFunction"))
        or not callable(getattr(validators, "deepcopy", None))
    ):
        raise RuntimeError("moto changed: its update-expression traversal moved; update this fix")
    for name in (
        "_processing_map",
        "nodes_to_be_processed",
        "process",
        "traverse_node_recursively",
    ):
        if not callable(getattr(traverser, name, None)):
            raise RuntimeError(f"moto changed: DepthFirstTraverser.{name} is gone; update this fix")
    # The answers are kept per pass class: no pass may choose its node types per instance.
    passes = list(traverser.__subclasses__())
    while passes:
        cls = passes.pop()
        passes.extend(cls.__subclasses__())
        for name in ("nodes_to_be_processed", "traverse_node_recursively"):
            if name in vars(cls):
                raise RuntimeError(
                    f"moto changed: {cls.__name__} overrides {name}; update this fix"
                )
    return traverser, node_type


def _process_each_node_type_once(traverser: Any, node_type: Any) -> None:
    def table(self: Any) -> dict[Any, Any]:
        # Each pass's table maps node types to its own bound methods: constant per pass.
        built: dict[Any, Any] | None = self.__dict__.get("_mb_table")
        if built is None:
            built = self.__dict__["_mb_table"] = self._processing_map()
            self.__dict__["_mb_types"] = tuple(built)
        return built

    def nodes_to_be_processed(self: Any) -> tuple[Any, ...]:
        table(self)
        types: tuple[Any, ...] = self.__dict__["_mb_types"]
        return types

    def process(self: Any, node: Any) -> Any:
        for class_key, processor in table(self).items():
            if isinstance(node, class_key):
                return processor(node)
        return None

    # Which node types each pass processes, asked once per (pass, node type) instead of for
    # every node: moto's walk asked `isinstance` against its abstract classes at each node.
    kinds: dict[tuple[type, type], tuple[bool, bool]] = {}

    def kind(self: Any, node: Any) -> tuple[bool, bool]:
        key = (type(self), type(node))
        found = kinds.get(key)
        if found is None:
            is_node = isinstance(node, node_type)
            found = kinds[key] = (
                is_node,
                is_node and isinstance(node, nodes_to_be_processed(self)),
            )
        return found

    def traverse_node_recursively(self: Any, node: Any, child_id: int = -1) -> Any:
        # moto's own walk (children first, then the node), with `kind` for its two questions.
        is_node, processed = kind(self, node)
        if is_node:
            parent_node = node.parent
            if node.children is not None:
                for i, child_node in enumerate(node.children):
                    self.pre_processing_of_child(node, i)
                    self.traverse_node_recursively(child_node, i)
            if processed:
                node = self.process(node)
                node.parent = parent_node
                if parent_node:
                    parent_node.children[child_id] = node
        return node

    traverser.nodes_to_be_processed = nodes_to_be_processed
    traverser.process = process
    traverser.traverse_node_recursively = traverse_node_recursively


def _find_clauses_by_type(node_type: Any, nodes: Any) -> None:
    # find_clauses walks down through every Expression and function node, asking the same
    # two abstract-class questions of each; the checks count and compare an update's clauses
    # several times per call. The answer per node type is kept.
    descend: dict[type, bool] = {}
    deeper_types = (nodes.Expression, nodes.UpdateExpressionFunction)

    def find_clauses(self: Any, clause_types: Any) -> list[Any]:
        clauses: list[Any] = []
        for child in self.children or []:
            cls = type(child)
            if cls in clause_types:
                clauses.append(child)
                continue
            deeper = descend.get(cls)
            if deeper is None:
                deeper = descend[cls] = isinstance(child, deeper_types)
            if deeper:
                clauses.extend(child.find_clauses(clause_types))
        return clauses

    node_type.find_clauses = find_clauses


def _copy_trees_by_pickling(validators: Any, node_type: Any) -> None:
    def tree_copy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        if memo is None and isinstance(value, node_type):
            try:
                blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
                return pickle.loads(blob)  # noqa: S301 - our own bytes, made on the line above
            except (pickle.PicklingError, TypeError, AttributeError):
                pass
        return copy.deepcopy(value, memo)

    validators.deepcopy = tree_copy


def _queue_views_with_one_clock_read() -> None:
    """The visible messages (every receive) and the delayed and in-flight counts (every
    send): the same tests as Message.visible and Message.delayed, against one reading of
    the clock per view instead of one per message in the queue."""
    from moto.sqs import models

    sqs_models: Any = models
    queue_cls: Any = models.Queue
    views = (
        "messages",
        "approximate_number_of_messages_delayed",
        "approximate_number_of_messages_not_visible",
    )
    if not all(isinstance(queue_cls.__dict__.get(n), property) for n in views) or not callable(
        getattr(sqs_models, "unix_time_millis", None)
    ):
        raise RuntimeError("moto changed: the SQS queue's views moved; update this fix")

    def messages(self: Any) -> list[Any]:
        now = sqs_models.unix_time_millis()
        return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]

    def delayed(self: Any) -> int:
        now = sqs_models.unix_time_millis()
        return sum(1 for m in list(self._messages) if now < m.delayed_until)

    def not_visible(self: Any) -> int:
        now = sqs_models.unix_time_millis()
        return sum(1 for m in list(self._messages) if not now > m.visible_at)

    queue_cls.messages = property(messages)
    queue_cls.approximate_number_of_messages_delayed = property(delayed)
    queue_cls.approximate_number_of_messages_not_visible = property(not_visible)


def _pending_groups_from_a_snapshot() -> None:
    from moto.sqs import models

    queue_cls: Any = models.Queue
    if not isinstance(queue_cls.__dict__.get("pending_message_groups"), property):
        raise RuntimeError("moto changed: Queue.pending_message_groups moved; update this fix")

    def pending_message_groups(self: Any) -> set[str]:
        # list() copies the set in one step, so another receive adding to it cannot break
        # the iteration (moto iterated the live set).
        in_flight = list(self._pending_messages)
        return {m.group_id for m in in_flight if m.group_id is not None}

    queue_cls.pending_message_groups = property(pending_message_groups)


def _delete_a_batch_in_one_pass() -> None:
    from moto.sqs import models

    backend_cls: Any = models.SQSBackend
    message_cls: Any = models.Message
    if not callable(getattr(backend_cls, "delete_message_batch", None)) or not isinstance(
        message_cls.__dict__.get("all_receipt_handles"), property
    ):
        raise RuntimeError("moto changed: SQS's batch delete moved; update this fix")

    def delete_message_batch(
        self: Any, queue_name: str, receipts: list[dict[str, Any]]
    ) -> tuple[list[str], list[dict[str, Any]]]:
        queue = self.get_queue(queue_name)
        wanted = {entry["ReceiptHandle"] for entry in receipts} - queue.deleted_messages
        if wanted:
            kept = []
            for message in queue._messages:
                handles = message.all_receipt_handles
                if wanted.isdisjoint(handles):
                    kept.append(message)
                else:
                    queue.pending_messages.discard(message)
                    queue.deleted_messages.update(handles)
            queue._messages = kept
        success: list[str] = []
        errors: list[dict[str, Any]] = []
        for entry in receipts:
            handle = entry["ReceiptHandle"]
            if handle in queue.deleted_messages:  # deleted now, or before: both succeed
                success.append(entry["Id"])
            else:
                errors.append(
                    {
                        "Id": entry["Id"],
                        "SenderFault": True,
                        "Code": "ReceiptHandleIsInvalid",
                        "Message": f'The input receipt handle "{handle}" is not a valid '
                        "receipt handle.",
                    }
                )
        return success, errors

    backend_cls.delete_message_batch = delete_message_batch


def _random_strings_in_one_draw() -> None:
    import string

    from moto.moto_api._internal import mock_random, moto_random
    from moto.sqs import models

    sqs_models: Any = models
    random_cls: Any = moto_random.MotoRandom
    if not callable(getattr(sqs_models, "generate_receipt_handle", None)) or not callable(
        random_cls.__dict__.get("get_random_string")
    ):
        raise RuntimeError("moto changed: its random strings moved; update this fix")
    length = len(sqs_models.generate_receipt_handle())

    def generate_receipt_handle() -> str:  # from moto's seedable generator, as before
        return "".join(mock_random.choices(string.ascii_lowercase, k=length))

    def get_random_string(
        self: Any, length: int = 20, include_digits: bool = True, lower_case: bool = False
    ) -> str:
        pool = string.ascii_letters + (string.digits if include_digits else "")
        drawn = "".join(self.choices(pool, k=length))
        return drawn.lower() if lower_case else drawn

    sqs_models.generate_receipt_handle = generate_receipt_handle
    random_cls.get_random_string = get_random_string
