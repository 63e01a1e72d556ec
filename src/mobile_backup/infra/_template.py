"""Read `infra/template.yaml` and evaluate the few intrinsic functions the local stack needs.

CloudFormation's short tags (`!Ref`, `!Sub`, `!GetAtt`, ...) are not YAML that a safe loader
understands, so they are turned into their long JSON forms (`{"Ref": ...}`,
`{"Fn::Sub": ...}`) while parsing. The resolver then evaluates those forms against values the
caller supplies (parameters, pseudo parameters, and what `Ref`/`GetAtt` of each resource
means locally), so names and ARNs come from the template rather than from copies in code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from mobile_backup.core import ConfigError

__all__ = ["TemplateError", "default_template_path", "load_template", "resolve"]

_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


class TemplateError(ConfigError):
    """The template cannot be read, or a value in it cannot be resolved locally."""

    code = "template_error"


def default_template_path() -> Path:
    """The template the package carries (`mobile_backup/infra/template.yaml`): in a checkout,
    a link to `infra/template.yaml`; in an installed wheel, a copy of it."""
    from importlib.resources import files

    return Path(str(files("mobile_backup.infra").joinpath("template.yaml")))


class _CfnLoader(yaml.SafeLoader):
    """A safe loader that also knows CloudFormation's short intrinsic-function tags."""


def _construct(node: yaml.Node, loader: yaml.SafeLoader) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    raise TemplateError(f"unsupported YAML node {node!r}")  # pragma: no cover


def _long_form(name: str) -> Any:
    def constructor(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        return {name: _construct(node, loader)}

    return constructor


def _get_att(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    value = _construct(node, loader)
    if isinstance(value, str):
        # `!GetAtt Logical.Attr.Sub` splits at the first dot only: attribute names may
        # contain dots (e.g. `Endpoint.Address`).
        logical, _, attr = value.partition(".")
        value = [logical, attr]
    return {"Fn::GetAtt": value}


for _tag in (
    "And",
    "Base64",
    "Cidr",
    "Equals",
    "FindInMap",
    "GetAZs",
    "If",
    "ImportValue",
    "Join",
    "Not",
    "Or",
    "Select",
    "Split",
    "Sub",
    "Transform",
):
    _CfnLoader.add_constructor(f"!{_tag}", _long_form(f"Fn::{_tag}"))
_CfnLoader.add_constructor("!Ref", _long_form("Ref"))
_CfnLoader.add_constructor("!Condition", _long_form("Condition"))
_CfnLoader.add_constructor("!GetAtt", _get_att)


def load_template(path: Path | None = None) -> dict[str, Any]:
    """Parse a CloudFormation/SAM template (YAML, short tags allowed) into plain data."""
    source = path or default_template_path()
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(f"cannot read the template {source}: {exc.strerror}") from exc
    try:
        data = yaml.load(text, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise TemplateError(f"{source} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise TemplateError(f"{source} is not a CloudFormation template (no Resources)")
    return data


def resolve(
    value: Any,
    *,
    params: Mapping[str, Any],
    pseudo: Mapping[str, Any],
    refs: Mapping[str, Any],
    attrs: Mapping[str, Any],
    conditions: Mapping[str, bool] | None = None,
) -> Any:
    """Evaluate intrinsic functions in `value`, recursively.

    `params` are the template parameters' values, `pseudo` the pseudo parameters
    (`AWS::Region`, ...), `refs` what `Ref` of a logical ID yields and `attrs` what
    `GetAtt` yields, keyed `"Logical.Attribute"`; `conditions` the template's conditions,
    evaluated (`condition_values`), for `Fn::If`. `Ref: AWS::NoValue` removes the key or
    item it stands for. Anything unknown raises TemplateError, so a template change that
    the local stack cannot follow fails loudly.
    """
    known = conditions or {}

    def lookup_ref(name: str) -> Any:
        for table in (params, pseudo, refs):
            if name in table:
                return table[name]
        raise TemplateError(f"cannot resolve Ref {name!r} locally")

    def lookup_att(logical: str, attr: str) -> Any:
        key = f"{logical}.{attr}"
        if key not in attrs:
            raise TemplateError(f"cannot resolve GetAtt {key!r} locally")
        return attrs[key]

    def sub(template: str, variables: Mapping[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical, _, attr = name.partition(".")
                return str(lookup_att(logical, attr))
            return str(lookup_ref(name))

        # `${!Literal}` is CloudFormation's escape for a literal `${Literal}`.
        return _SUB_VARIABLE.sub(replace, template).replace("${!", "${")

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [item for item in (walk(i) for i in node) if item is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref" and arg == "AWS::NoValue":
                return _NO_VALUE
            if key == "Ref":
                return lookup_ref(str(walk(arg)))
            if key == "Fn::If":
                if not isinstance(arg, list) or len(arg) != 3 or str(arg[0]) not in known:
                    raise TemplateError(f"cannot resolve Fn::If {arg!r} locally")
                return walk(arg[1] if known[str(arg[0])] else arg[2])
            if key == "Fn::GetAtt":
                parts = walk(arg)
                if isinstance(parts, str):
                    parts = parts.split(".", 1)
                if not isinstance(parts, list) or len(parts) != 2:
                    raise TemplateError(f"malformed Fn::GetAtt: {arg!r}")
                return lookup_att(str(parts[0]), str(parts[1]))
            if key == "Fn::Sub":
                if isinstance(arg, str):
                    return sub(arg, {})
                if isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], dict):
                    return sub(str(walk(arg[0])), {k: walk(v) for k, v in arg[1].items()})
                raise TemplateError(f"malformed Fn::Sub: {arg!r}")
            if key == "Fn::Join":
                if not isinstance(arg, list) or len(arg) != 2:
                    raise TemplateError(f"malformed Fn::Join: {arg!r}")
                delimiter, items = arg[0], walk(arg[1])
                return str(delimiter).join(str(item) for item in items)
            if key == "Fn::Select":
                index, items = walk(arg)
                return items[int(index)]
            if key.startswith("Fn::"):
                raise TemplateError(f"{key} is not supported by the local resolver")
        walked = {k: walk(v) for k, v in node.items()}
        return {k: v for k, v in walked.items() if v is not _NO_VALUE}

    resolved = walk(value)
    return None if resolved is _NO_VALUE else resolved


_NO_VALUE = object()  # what `Ref: AWS::NoValue` resolves to until it is dropped


def condition_values(
    template: Mapping[str, Any], *, params: Mapping[str, Any], pseudo: Mapping[str, Any]
) -> dict[str, bool]:
    """Every condition of the template's `Conditions`, evaluated with these parameters
    (`Fn::Equals`, `Fn::Not`, `Fn::And`, `Fn::Or` and `Condition` references)."""
    declared: Mapping[str, Any] = template.get("Conditions") or {}
    values: dict[str, bool] = {}

    def scalar(node: Any) -> Any:
        if isinstance(node, dict) and set(node) == {"Ref"}:
            name = node["Ref"]
            for table in (params, pseudo):
                if name in table:
                    return table[name]
            raise TemplateError(f"cannot resolve Ref {name!r} in a condition")
        return node

    def evaluate(name: str, trail: tuple[str, ...] = ()) -> bool:
        if name in values:
            return values[name]
        if name not in declared or name in trail:
            raise TemplateError(f"no condition {name!r} (or it refers to itself)")
        values[name] = test(declared[name], (*trail, name))
        return values[name]

    def test(node: Any, trail: tuple[str, ...]) -> bool:
        if not isinstance(node, dict) or len(node) != 1:
            raise TemplateError(f"malformed condition: {node!r}")
        ((key, arg),) = node.items()
        if key == "Condition":
            return evaluate(str(arg), trail)
        if key == "Fn::Equals":
            left, right = (scalar(a) for a in arg)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not test(arg[0], trail)
        if key == "Fn::And":
            return all(test(a, trail) for a in arg)
        if key == "Fn::Or":
            return any(test(a, trail) for a in arg)
        raise TemplateError(f"{key} is not supported in a condition locally")

    for name in declared:
        evaluate(name)
    return values
