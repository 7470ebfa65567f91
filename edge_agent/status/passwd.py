"""Hash an operator's password for the ``[[users]]`` table of the agent config.

    python -m edge_agent.status.passwd [--name NAME] [--role ROLE] [--stdin]

Asks for the password twice (or reads one line from standard input with
``--stdin``) and prints the ``[[users]]`` entry to paste into the config.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence

from edge_agent.status.auth import hash_password
from edge_agent.status.settings import ROLES

__all__ = ["main", "users_entry"]


def users_entry(name: str, role: str, password: str) -> str:
    """The TOML ``[[users]]`` entry for one user."""
    return f'[[users]]\nname = "{name}"\npassword_hash = "{hash_password(password)}"\nrole = "{role}"\n'


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge_agent.status.passwd", description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="operator")
    parser.add_argument("--role", default="operator", choices=sorted(ROLES))
    parser.add_argument("--stdin", action="store_true", help="read the password from standard input")
    args = parser.parse_args(argv)
    if args.stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("the passwords differ", file=sys.stderr)
            return 2
    if len(password) < 8:
        print("a password needs at least 8 characters", file=sys.stderr)
        return 2
    sys.stdout.write(users_entry(args.name, args.role, password))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
