"""``python -m chalicelib.auth token --sub alice``: a token for ``make run``.

Prints one signed-in user's ID token on stdout and nothing else, so that it can be put
straight into a header: ``-H "Authorization: Bearer $(python -m chalicelib.auth token
--sub alice)"``. It reads the settings ``make run`` runs with, those of the Chalice stage
``local`` (``.chalice/config.json``) over the process environment, as ``chalice local``
sets them, so the key and the issuer are the server's. Like ``deploy``, which reads that
config, it runs in the development environment only.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from chalicelib.auth.local import mint_token
from chalicelib.settings import SettingsError, load_settings
from deploy.stage import read_config, stage_environment

LOCAL_STAGE = "local"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.auth", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    token = commands.add_parser("token", help="print an ID token of the local stage")
    token.add_argument("--sub", required=True, help="the user's id (the token's sub)")
    token.add_argument("--username", help="the user's name (default: the sub)")
    token.add_argument("--groups", default="", help="comma-separated groups, e.g. admin,editors")
    token.add_argument("--minutes", type=_positive, default=60, help="lifetime (default 60)")
    arguments = parser.parse_args(argv)
    if not arguments.sub.strip():
        parser.error("--sub cannot be empty")
    try:
        settings = load_settings({**os.environ, **stage_environment(read_config(), LOCAL_STAGE)})
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(
        mint_token(
            settings.local_dir,
            settings.project,
            sub=arguments.sub,
            username=arguments.username,
            groups=[group.strip() for group in arguments.groups.split(",") if group.strip()],
            lifetime_seconds=arguments.minutes * 60,
        )
    )
    return 0


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number of minutes")
    return int(value)


if __name__ == "__main__":
    sys.exit(main())
