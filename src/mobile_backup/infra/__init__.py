"""The AWS SAM template, shipped inside the package (`template.yaml`).

The source of truth is `infra/template.yaml` at the top of the checkout; the file here is a
link to it, so a built wheel carries its content and an installed tool (`pipx install`)
finds it with `importlib.resources` wherever it lives. `load_template` reads it (PyYAML) for
`deploy` and for the local stack alike; `resolve` evaluates its intrinsic functions.
"""

from __future__ import annotations

from mobile_backup.infra._resolve import condition_values, resolve
from mobile_backup.infra._template import TemplateError, default_template_path, load_template

__all__ = [
    "TemplateError",
    "condition_values",
    "default_template_path",
    "load_template",
    "resolve",
]
