"""The AWS SAM template, shipped inside the package (`template.yaml`).

The source of truth is `infra/template.yaml` at the top of the checkout; the file here is a
link to it, so a built wheel carries its content and an installed tool (`pipx install`)
finds it with `importlib.resources` wherever it lives.
"""
