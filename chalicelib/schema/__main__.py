"""``python -m chalicelib.schema [path]``: print the public SDL, or the schema's problems.

Warnings go to stderr beside the SDL on stdout, so ``> api.graphql`` keeps the SDL clean.

The default path is the app's schema file (``OCG_SCHEMA_FILE``, else
``schema.graphql`` at the project root), so the command checks what the app would load.
"""

from __future__ import annotations

import sys
from pathlib import Path

from chalicelib.schema import SchemaError, load_schema, public_sdl
from chalicelib.settings import load_settings


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        print("usage: python -m chalicelib.schema [schema.graphql]", file=sys.stderr)
        return 2
    path = Path(argv[0]) if argv else load_settings().schema_file
    try:
        model = load_schema(path)
    except SchemaError as error:
        print(error, file=sys.stderr)
        return 1
    except OSError as error:
        print(f"{path}: {error.strerror or error}", file=sys.stderr)
        return 1
    for warning in model.warnings:
        print(warning, file=sys.stderr)
    sys.stdout.write(public_sdl(model))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
