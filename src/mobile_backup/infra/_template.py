"""Read `infra/template.yaml` (its intrinsic functions are evaluated by `_resolve.py`).

CloudFormation's short tags (`!Ref`, `!Sub`, `!GetAtt`, ...) are not YAML that a safe loader
understands, so they are turned into their long JSON forms (`{"Ref": ...}`,
`{"Fn::Sub": ...}`) while parsing. The resolver then evaluates those forms against values the
caller supplies (parameters, pseudo parameters, and what `Ref`/`GetAtt` of each resource
means locally), so names and ARNs come from the template rather than from copies in code.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mobile_backup.core import ConfigError

__all__ = ["TemplateError", "default_template_path", "load_template"]


class TemplateError(ConfigError):
    """The template cannot be read, or a value in it cannot be resolved locally."""

    code = "template_error"


def default_template_path() -> Path:
    """The template the package carries (`mobile_backup/infra/template.yaml`): in a checkout,
    a link to `infra/template.yaml`; in an installed wheel, a copy of it."""
    from importlib.resources import files

    return Path(str(files("mobile_backup.infra").joinpath("template.yaml")))


# libyaml's parser when PyYAML was built with it (its wheels are): 10x faster than the pure
# Python one, and the template is read by every local provisioning.
if TYPE_CHECKING:
    _SafeLoader = yaml.SafeLoader
else:
    _SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CfnLoader(_SafeLoader):
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
