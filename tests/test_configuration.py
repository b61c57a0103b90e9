"""The start-up check knows every RECOVERY_* variable some part of the platform reads, and
no other: the kit's Settings, the gateway's, the workforce options and direct reads."""

import ast
from pathlib import Path

from pydantic_settings import BaseSettings

from recovery.common.settings import OTHER_PARTS_VARIABLES, Settings, known_variables
from recovery.gateway.settings import GatewaySettings
from recovery.workforce.options import WorkforceOptions

REPO = Path(__file__).resolve().parents[1]
SOURCES = [*REPO.glob("libs/*/src"), *REPO.glob("services/*/src"), REPO / "gateway" / "src"]


def variables_of(settings: type[BaseSettings]) -> set[str]:
    prefix = settings.model_config.get("env_prefix", "")
    return {f"{prefix}{name}".upper() for name in settings.model_fields}


def read_directly(tree: ast.AST) -> set[str]:
    """Names read with ``os.environ.get(...)``, ``os.environ[...]`` or ``os.getenv(...)``."""
    found: set[str] = set()
    for node in ast.walk(tree):
        key: ast.expr | None = None
        if isinstance(node, ast.Call) and node.args and ast.unparse(node.func) in (
                "os.environ.get", "os.getenv"):
            key = node.args[0]
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            key = node.slice
        if isinstance(key, ast.Constant) and str(key.value).startswith("RECOVERY_"):
            found.add(str(key.value))
    return found


def test_the_direct_reads_are_found() -> None:
    tree = ast.parse("import os\nos.environ.get('RECOVERY_A', '1')\nos.environ['RECOVERY_B']\n"
                     "os.getenv('RECOVERY_C')\nos.environ.get('HOME')\n")
    assert read_directly(tree) == {"RECOVERY_A", "RECOVERY_B", "RECOVERY_C"}


def test_the_known_variables_are_exactly_those_the_parts_read() -> None:
    direct: set[str] = set()
    for source in SOURCES:
        for path in source.rglob("*.py"):
            direct |= read_directly(ast.parse(path.read_text(encoding="utf-8")))
    read = (variables_of(Settings) | variables_of(GatewaySettings)
            | variables_of(WorkforceOptions) | direct)
    assert known_variables() == read
    # and the kit's list holds only what its Settings does not
    assert not OTHER_PARTS_VARIABLES & variables_of(Settings)
