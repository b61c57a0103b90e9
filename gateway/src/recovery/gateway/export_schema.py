"""Writes the schema to ``gateway/schema.graphql``: ``python -m recovery.gateway.export_schema``
(``--check`` fails when the file and the code differ)."""

import argparse
import sys
from pathlib import Path

from recovery.gateway.schema import build_schema
from recovery.gateway.settings import GatewaySettings

#: gateway/schema.graphql, beside the package's pyproject.toml.
SCHEMA_FILE = Path(__file__).resolve().parents[3] / "schema.graphql"


def schema_text() -> str:
    """The SDL of the schema as code defines it (limits do not change the SDL)."""
    return build_schema(GatewaySettings()).as_str() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args()
    text = schema_text()
    if args.check:
        if not SCHEMA_FILE.exists() or SCHEMA_FILE.read_text() != text:
            print(f"{SCHEMA_FILE.name} differs from the code; run "
                  "python -m recovery.gateway.export_schema", file=sys.stderr)
            sys.exit(1)
        return
    SCHEMA_FILE.write_text(text)
    print(f"wrote {SCHEMA_FILE}")


if __name__ == "__main__":
    main()
