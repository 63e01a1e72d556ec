"""Evaluating the intrinsic functions the local stack needs, and the template's conditions.

A `Ref` or `Fn::GetAtt` is looked up in what the caller knows (parameters, pseudo
parameters, what each resource means locally), `Fn::Sub`, `Fn::Join`, `Fn::Select` and
`Fn::If` are evaluated, and `Ref: AWS::NoValue` removes the key or item it stands for.
Anything else raises TemplateError, so a template change the local stack cannot follow
fails loudly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from mobile_backup.infra._template import TemplateError

__all__ = ["condition_values", "resolve"]

_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")
_NO_VALUE = object()  # what `Ref: AWS::NoValue` resolves to until it is dropped


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
    evaluated (`condition_values`), for `Fn::If`.
    """
    resolved = _Resolver(params, pseudo, refs, attrs, conditions or {}).walk(value)
    return None if resolved is _NO_VALUE else resolved


class _Resolver:
    def __init__(
        self,
        params: Mapping[str, Any],
        pseudo: Mapping[str, Any],
        refs: Mapping[str, Any],
        attrs: Mapping[str, Any],
        conditions: Mapping[str, bool],
    ) -> None:
        self._tables = (params, pseudo, refs)
        self._attrs = attrs
        self._conditions = conditions
        self._functions: dict[str, Callable[[Any], Any]] = {
            "Ref": self._ref,
            "Fn::If": self._if,
            "Fn::GetAtt": self._get_att,
            "Fn::Sub": self._sub,
            "Fn::Join": self._join,
            "Fn::Select": self._select,
        }

    def walk(self, node: Any) -> Any:
        if isinstance(node, list):
            return [item for item in (self.walk(i) for i in node) if item is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key in self._functions:
                return self._functions[key](arg)
            if key.startswith("Fn::"):
                raise TemplateError(f"{key} is not supported by the local resolver")
        walked = {k: self.walk(v) for k, v in node.items()}
        return {k: v for k, v in walked.items() if v is not _NO_VALUE}

    # Intrinsics ------------------------------------------------------------------------
    def _ref(self, arg: Any) -> Any:
        if arg == "AWS::NoValue":
            return _NO_VALUE
        return self._lookup(str(self.walk(arg)))

    def _if(self, arg: Any) -> Any:
        if not isinstance(arg, list) or len(arg) != 3 or str(arg[0]) not in self._conditions:
            raise TemplateError(f"cannot resolve Fn::If {arg!r} locally")
        return self.walk(arg[1] if self._conditions[str(arg[0])] else arg[2])

    def _get_att(self, arg: Any) -> Any:
        parts = self.walk(arg)
        if isinstance(parts, str):
            parts = parts.split(".", 1)
        if not isinstance(parts, list) or len(parts) != 2:
            raise TemplateError(f"malformed Fn::GetAtt: {arg!r}")
        return self._attribute(str(parts[0]), str(parts[1]))

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, str):
            return self._substitute(arg, {})
        if isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], dict):
            variables = {k: self.walk(v) for k, v in arg[1].items()}
            return self._substitute(str(self.walk(arg[0])), variables)
        raise TemplateError(f"malformed Fn::Sub: {arg!r}")

    def _join(self, arg: Any) -> str:
        if not isinstance(arg, list) or len(arg) != 2:
            raise TemplateError(f"malformed Fn::Join: {arg!r}")
        delimiter, items = arg[0], self.walk(arg[1])
        return str(delimiter).join(str(item) for item in items)

    def _select(self, arg: Any) -> Any:
        index, items = self.walk(arg)
        return items[int(index)]

    # Lookups ---------------------------------------------------------------------------
    def _lookup(self, name: str) -> Any:
        for table in self._tables:
            if name in table:
                return table[name]
        raise TemplateError(f"cannot resolve Ref {name!r} locally")

    def _attribute(self, logical: str, attr: str) -> Any:
        key = f"{logical}.{attr}"
        if key not in self._attrs:
            raise TemplateError(f"cannot resolve GetAtt {key!r} locally")
        return self._attrs[key]

    def _substitute(self, template: str, variables: Mapping[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical, _, attr = name.partition(".")
                return str(self._attribute(logical, attr))
            return str(self._lookup(name))

        # `${!Literal}` is CloudFormation's escape for a literal `${Literal}`.
        return _SUB_VARIABLE.sub(replace, template).replace("${!", "${")


def condition_values(
    template: Mapping[str, Any], *, params: Mapping[str, Any], pseudo: Mapping[str, Any]
) -> dict[str, bool]:
    """Every condition of the template's `Conditions`, evaluated with these parameters
    (`Fn::Equals`, `Fn::Not`, `Fn::And`, `Fn::Or` and `Condition` references)."""
    return _Conditions(template.get("Conditions") or {}, (params, pseudo)).all()


class _Conditions:
    def __init__(self, declared: Mapping[str, Any], tables: tuple[Mapping[str, Any], ...]) -> None:
        self._declared = declared
        self._tables = tables
        self._values: dict[str, bool] = {}
        self._tests: dict[str, Callable[[Any, tuple[str, ...]], bool]] = {
            "Condition": lambda arg, trail: self._evaluate(str(arg), trail),
            "Fn::Equals": lambda arg, _: str(self._scalar(arg[0])) == str(self._scalar(arg[1])),
            "Fn::Not": lambda arg, trail: not self._test(arg[0], trail),
            "Fn::And": lambda arg, trail: all(self._test(a, trail) for a in arg),
            "Fn::Or": lambda arg, trail: any(self._test(a, trail) for a in arg),
        }

    def all(self) -> dict[str, bool]:
        for name in self._declared:
            self._evaluate(name, ())
        return self._values

    def _evaluate(self, name: str, trail: tuple[str, ...]) -> bool:
        if name not in self._values:
            if name not in self._declared or name in trail:
                raise TemplateError(f"no condition {name!r} (or it refers to itself)")
            self._values[name] = self._test(self._declared[name], (*trail, name))
        return self._values[name]

    def _test(self, node: Any, trail: tuple[str, ...]) -> bool:
        if not isinstance(node, dict) or len(node) != 1:
            raise TemplateError(f"malformed condition: {node!r}")
        ((key, arg),) = node.items()
        if key not in self._tests:
            raise TemplateError(f"{key} is not supported in a condition locally")
        return self._tests[key](arg, trail)

    def _scalar(self, node: Any) -> Any:
        if isinstance(node, dict) and set(node) == {"Ref"}:
            for table in self._tables:
                if node["Ref"] in table:
                    return table[node["Ref"]]
            raise TemplateError(f"cannot resolve Ref {node['Ref']!r} in a condition")
        return node
