"""Our code uses only the public APIs of the libraries it is built on, so each of them
upgrades like any other dependency (docs/STYLE: never reach into a library's private names).

Read from the source with ``ast``, every ``.py`` file under libs/, services/ and gateway/,
tests included. A name is private when it starts with an underscore and is not a dunder.
Three rules:

- no import of a private module or name of a library (``fastapi._compat``,
  ``from fastapi.routing import _extract_endpoint_context``), nor by ``import_module``;
- no ``x._name`` (nor ``getattr(x, "_name")``) on an expression other than ``self``/``cls``,
  unless our own code defines ``_name`` (a function, class, variable, class field,
  ``__slots__`` entry, or ``self._name`` outside a library subclass): ``kit._reads`` is
  ours, ``compiled._bind_processors`` is SQLAlchemy's. A variable annotated with a library
  class (``request: Request``) is the library's whatever the name: ``request._body`` is
  found even though one of our classes has a method ``_body``;
- in a subclass of a library class, no ``self._name``, ``cls._name``, ``super()._name`` or
  ``def _name`` where the library class has ``_name`` (in ``dir()`` or set in its source):
  that is the library's state, not ours.
"""

import ast
import importlib
import inspect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from textwrap import dedent

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOTS = ("libs", "services", "gateway")
LIBRARIES = frozenset({
    "fastapi", "starlette", "pydantic", "pydantic_core", "pydantic_settings", "sqlalchemy",
    "sqlmodel", "strawberry", "nats", "httpx", "uvicorn", "aiosqlite", "asyncpg", "anyio",
})
SELF_NAMES = frozenset({"self", "cls"})
ATTRIBUTE_FUNCTIONS = frozenset({"getattr", "setattr", "hasattr", "delattr"})
IMPORT_FUNCTIONS = frozenset({"import_module", "importlib.import_module", "__import__"})


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def is_library(dotted: str) -> bool:
    return dotted.split(".")[0] in LIBRARIES


@dataclass(frozen=True, order=True)
class Violation:
    path: str
    line: int
    name: str
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what} {self.name}"


def our_files() -> list[Path]:
    return sorted(path for root in ROOTS for path in (REPO / root).rglob("*.py"))


# --- what a library class holds ---------------------------------------------------------------


def resolve(dotted: str) -> object | None:
    """The object a library's dotted name stands for, or None if it cannot be imported."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for part in parts[cut:]:
                found = getattr(found, part)
        except AttributeError:
            return None
        return found
    return None


@cache
def private_names_of(base: type) -> frozenset[str]:
    """The private names a library class and its library ancestors hold: class attributes,
    and attributes their own code sets or reads on ``self`` (``self._tx = ...``)."""
    names = {name for name in dir(base) if is_private(name)}
    for cls in base.__mro__:
        if not is_library(cls.__module__):
            continue
        try:
            source = dedent(inspect.getsource(cls))
        except (OSError, TypeError):  # compiled (pydantic_core, asyncpg) or no source
            continue
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Attribute) and is_private(node.attr) and \
                    isinstance(node.value, ast.Name) and node.value.id in SELF_NAMES:
                names.add(node.attr)
    return frozenset(names)


# --- what our code defines -------------------------------------------------------------------


def imported_names(tree: ast.AST) -> dict[str, str]:
    """Local name -> the dotted name it was imported as (absolute imports only)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    root = alias.name.split(".")[0]
                    names[root] = root
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def dotted_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Subscript):  # Generic[...] bases
        return dotted_name(node.value)
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        owner = dotted_name(node.value)
        return f"{owner}.{node.attr}" if owner else None
    return None


def library_class(node: ast.expr, imports: dict[str, str]) -> type | None:
    """The class of the listed libraries that this base or annotation names, if any."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):  # X | None
        return library_class(node.left, imports) or library_class(node.right, imports)
    local = dotted_name(node)
    if local is None:
        return None
    root, _, rest = local.partition(".")
    dotted = imports.get(root)
    if dotted is None or not is_library(dotted):
        return None
    resolved = resolve(f"{dotted}.{rest}" if rest else dotted)
    return resolved if isinstance(resolved, type) else None


def library_bases(cls: ast.ClassDef, imports: dict[str, str]) -> list[type]:
    """The classes of the listed libraries that ``cls`` names as its bases."""
    return [base for base in (library_class(node, imports) for node in cls.bases) if base]


def inherited_private(cls: ast.ClassDef, imports: dict[str, str]) -> frozenset[str]:
    names: set[str] = set()
    for base in library_bases(cls, imports):
        names |= private_names_of(base)
    return frozenset(names)


def defined_private_names(tree: ast.AST) -> set[str]:
    """The private names a module of ours defines (see the module's docstring)."""
    imports = imported_names(tree)
    defined: set[str] = set()
    classes = [node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    # What a library subclass sets or overrides under a name its library class uses stays
    # the library's: it makes no name ours.
    borrowed: set[int] = set()
    for cls in classes:
        theirs = inherited_private(cls, imports)
        for node in ast.walk(cls):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and \
                    isinstance(node.value, ast.Name) and node.value.id in SELF_NAMES:
                if node.attr in theirs:
                    borrowed.add(id(node))
                else:
                    defined.add(node.attr)
        for statement in cls.body:
            if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef) and \
                    statement.name in theirs:
                borrowed.add(id(statement))
            elif isinstance(statement, ast.Assign | ast.AnnAssign):
                borrowed |= {id(target) for target in ast.walk(statement)
                             if isinstance(target, ast.Name) and target.id in theirs}
    for node in ast.walk(tree):
        if id(node) in borrowed:
            continue
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            defined.add(node.id)
        elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets):
            defined |= {c.value for c in ast.walk(node.value)
                        if isinstance(c, ast.Constant) and isinstance(c.value, str)}
    return {name for name in defined if is_private(name)}


# --- the rules --------------------------------------------------------------------------------


class PrivateUseFinder(ast.NodeVisitor):
    """Walks one module and collects its uses of the libraries' private names."""

    def __init__(self, path: str, tree: ast.AST, ours: set[str]) -> None:
        self.path = path
        self.ours = ours
        self.imports = imported_names(tree)
        self.classes: list[frozenset[str]] = []  # the inherited private names, innermost last
        self.typed: list[set[str]] = [set()]  # names annotated with a library class, per scope
        self.violations: list[Violation] = []

    def flag(self, node: ast.AST, name: str, what: str) -> None:
        self.violations.append(Violation(self.path, getattr(node, "lineno", 0), name, what))

    def check_module(self, node: ast.AST, module: str) -> None:
        if is_library(module) and any(is_private(part) for part in module.split(".")):
            self.flag(node, module, "imports the private module")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.check_module(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module is None or node.level:
            return  # relative: our own package
        self.check_module(node, node.module)
        if is_library(node.module):
            for alias in node.names:
                if is_private(alias.name):
                    self.flag(node, f"{node.module}.{alias.name}", "imports the private name")

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        theirs = inherited_private(node, self.imports)
        for statement in node.body:
            defined: list[str] = []
            if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
                defined = [statement.name]
            elif isinstance(statement, ast.Assign | ast.AnnAssign):
                targets = statement.targets if isinstance(statement, ast.Assign) \
                    else [statement.target]
                defined = [t.id for t in targets if isinstance(t, ast.Name)]
            for name in defined:
                if name in theirs:
                    self.flag(statement, name, "overrides the library class's private")
        self.classes.append(theirs)
        self.generic_visit(node)
        self.classes.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.visit_function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self.visit_function(node)

    def visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        arguments = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
        self.typed.append({argument.arg for argument in arguments if argument.annotation
                           and library_class(argument.annotation, self.imports)})
        self.generic_visit(node)
        self.typed.pop()

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if isinstance(node.target, ast.Name) and library_class(node.annotation, self.imports):
            self.typed[-1].add(node.target.id)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.check_attribute(node, node.value, node.attr)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        function = dotted_name(node.func)
        first = node.args[0] if node.args else None
        if function in IMPORT_FUNCTIONS and isinstance(first, ast.Constant) and \
                isinstance(first.value, str):
            self.check_module(node, first.value)
        elif function in ATTRIBUTE_FUNCTIONS and function not in self.imports and \
                len(node.args) >= 2 and first is not None:
            name = node.args[1]
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                self.check_attribute(node, first, name.value)
        self.generic_visit(node)

    def check_attribute(self, node: ast.AST, owner: ast.expr, name: str) -> None:
        if not is_private(name):
            return
        own_instance = isinstance(owner, ast.Name) and owner.id in SELF_NAMES
        via_super = isinstance(owner, ast.Call) and dotted_name(owner.func) == "super"
        if own_instance or via_super:
            if self.classes and name in self.classes[-1]:
                self.flag(node, name, "uses the library base class's private")
        elif name not in self.ours or (isinstance(owner, ast.Name) and any(
                owner.id in scope for scope in self.typed)):
            self.flag(node, name, "uses the private attribute")


def violations_in(sources: dict[str, str]) -> list[Violation]:
    """Every use of a library's private module or name in these modules (path -> source)."""
    trees = {path: ast.parse(source, filename=path) for path, source in sources.items()}
    ours: set[str] = set()
    for tree in trees.values():
        ours |= defined_private_names(tree)
    found: list[Violation] = []
    for path, tree in trees.items():
        finder = PrivateUseFinder(path, tree, ours)
        finder.visit(tree)
        found += finder.violations
    return sorted(found)


def snippet(source: str) -> list[str]:
    """The violations of one module of test code, without its path."""
    return [f"{v.line}: {v.what} {v.name}" for v in violations_in({"m.py": dedent(source)})]


# --- the checker itself ------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "expected"), [
    ("import fastapi._compat\n", ["1: imports the private module fastapi._compat"]),
    ("import starlette._exception_handler as h\n",
     ["1: imports the private module starlette._exception_handler"]),
    ("from fastapi.telemetry._api import validation_failed\n",
     ["1: imports the private module fastapi.telemetry._api"]),
    ("from fastapi.routing import _extract_endpoint_context\n",
     ["1: imports the private name fastapi.routing._extract_endpoint_context"]),
    ("import importlib\nimportlib.import_module('pydantic._internal')\n",
     ["2: imports the private module pydantic._internal"]),
])
def test_private_imports_of_a_library_are_found(source: str, expected: list[str]) -> None:
    assert snippet(source) == expected


@pytest.mark.parametrize("source", [
    "from fastapi.routing import APIRoute\n",
    "import sqlalchemy.ext.asyncio\n",
    "from ._helpers import _ours\n",  # our own package
    "from recovery.goals.service import _in\n",  # our own module
    "import json._private_looking\n",  # not one of the libraries
    "from fastapi import __version__\n",  # a dunder is public
])
def test_public_and_own_imports_pass(source: str) -> None:
    assert snippet(source) == []


@pytest.mark.parametrize(("source", "expected"), [
    ("def f(compiled):\n    return compiled._bind_processors\n",
     ["2: uses the private attribute _bind_processors"]),
    ("def f(request, body):\n    request._body = body\n",
     ["2: uses the private attribute _body"]),
    ("def f(conn):\n    return conn._connection.cursor()\n",
     ["2: uses the private attribute _connection"]),
    ("def f(conn):\n    return getattr(conn, '_connection')\n",
     ["2: uses the private attribute _connection"]),
    ("from fastapi import routing\nrouting._extract_endpoint_context(None)\n",
     ["2: uses the private attribute _extract_endpoint_context"]),
])
def test_private_attributes_of_other_objects_are_found(source: str, expected: list[str]) -> None:
    assert snippet(source) == expected


def test_private_names_our_own_code_defines_pass() -> None:
    assert snippet("""
        from dataclasses import dataclass, field
        _TABLE = {}

        def _helper():
            return 1

        @dataclass
        class Kit:
            _reads: object = field(default=None)

        class Cache:
            __slots__ = ("_slot",)

            def __init__(self):
                self._held = 1

        def use(kit, cache, module):
            return kit._reads, cache._held, cache._slot, module._helper(), module._TABLE
        """) == []


def test_a_variable_typed_with_a_library_class_is_the_library_s_whatever_we_name() -> None:
    assert snippet("""
        from starlette.requests import Request

        class Binder:
            async def _body(self, request):
                return await request.body()

        def read(request: Request, other: Binder):
            if not hasattr(request, "_body"):
                request._body = b""
            return other._body(request)
        """) == ["9: uses the private attribute _body", "10: uses the private attribute _body"]


def test_a_library_subclass_may_not_touch_the_library_class_private_state() -> None:
    assert snippet("""
        from sqlalchemy.ext.asyncio import AsyncSession
        from starlette.middleware.base import BaseHTTPMiddleware

        class Session(AsyncSession):
            def begin_quietly(self):
                self._proxied = None
                return super()._proxied

        class Middleware(BaseHTTPMiddleware):
            def _dispatch_ours(self):
                self._mine = 1
                return self._mine

        def elsewhere(session):
            return session._proxied
        """) == ["7: uses the library base class's private _proxied",
                 "8: uses the library base class's private _proxied",
                 "16: uses the private attribute _proxied"]


def test_overriding_a_private_method_of_a_library_class_is_found() -> None:
    assert snippet("""
        import pydantic

        class Model(pydantic.BaseModel):
            def _iter(self):
                return iter(())

        def elsewhere(model):
            return model._iter()
        """) == ["5: overrides the library class's private _iter",
                 "9: uses the private attribute _iter"]


# --- our code ----------------------------------------------------------------------------------


def our_violations() -> Iterator[Violation]:
    sources = {str(path.relative_to(REPO)): path.read_text(encoding="utf-8")
               for path in our_files()}
    yield from violations_in(sources)


def test_our_code_uses_only_the_public_apis_of_its_libraries() -> None:
    found = list(our_violations())
    assert not found, (f"{len(found)} uses of a library's private modules or names:\n"
                       + "\n".join(map(str, found)))


def test_the_scan_reads_every_part() -> None:
    files: Iterable[Path] = our_files()
    parts = {path.relative_to(REPO).parts[:2] for path in files}
    assert {("libs", "common"), ("services", "goals"), ("gateway", "src")} <= parts
