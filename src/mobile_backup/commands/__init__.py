"""The `mobile-backup` subcommands, one module per area; `cli.py` assembles them."""
