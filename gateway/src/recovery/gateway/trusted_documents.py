"""Trusted documents: operations registered ahead (a manifest of SHA-256 hash → document,
written at the web app's build), named in a request by their hash, Apollo style
(``extensions.persistedQuery.sha256Hash``) or GraphQL-over-HTTP style (``documentId``,
``"sha256:<hex>"``). With ``RECOVERY_TRUSTED_DOCUMENTS_ONLY`` nothing else runs.

As a command it writes the manifest, one document per operation (with the fragments it uses):
``python -m recovery.gateway.trusted_documents web/**/*.graphql -o manifest.json``."""

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    Node,
    OperationDefinitionNode,
    parse,
    print_ast,
)
from strawberry.extensions import SchemaExtension

from recovery.gateway.errors import ErrorCode, GatewayError

DOCUMENT_ID = re.compile(r"sha256:([0-9a-f]{64})")
HASH = re.compile(r"[0-9a-f]{64}")
#: What a refused WebSocket operation carries as its query, for the extension to answer:
#: its refusal's code in a comment, over a document that reads nothing.
REFUSED = "# refused: "
NOTHING = "\n{ __typename }"
MESSAGES = {
    ErrorCode.persisted_query_not_found: "No document is registered under this hash.",
    ErrorCode.trusted_document_required: "This API runs only registered documents: send "
                                         "the document's `documentId` instead of its text.",
}


def document_hash(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def refusal(code: ErrorCode) -> GatewayError:
    return GatewayError(code, MESSAGES[code])


class TrustedDocuments:
    """The registered documents, by hash; ``only``: nothing but them may run."""

    def __init__(self, documents: Mapping[str, str], *, only: bool = False) -> None:
        for named, document in documents.items():
            if named != document_hash(document):
                raise ValueError(f"The manifest's document {named[:12]}… does not have "
                                 "that hash.")
        self.documents = dict(documents)
        self.texts = frozenset(documents.values())
        self.only = only

    @classmethod
    def load(cls, path: Path | None, *, only: bool = False) -> "TrustedDocuments":
        """The manifest at ``path`` (none registered without one)."""
        documents = json.loads(path.read_text()) if path is not None else {}
        if not isinstance(documents, dict):
            raise ValueError("The trusted documents manifest is a JSON object hash → text.")
        return cls(documents, only=only)

    @property
    def in_use(self) -> bool:
        return self.only or bool(self.documents)

    def resolve(self, params: dict[str, Any]) -> dict[str, Any]:
        """A request's parameters with the document its hash names as its `query`; refused
        (a GatewayError) when the hash is unknown or, with ``only``, when none is named."""
        named = _named_hash(params)
        if named is None:
            query = params.get("query")
            if self.only and isinstance(query, str) and query not in self.texts:
                raise refusal(ErrorCode.trusted_document_required)
            return params
        document = self.documents.get(named)
        if document is None:
            raise refusal(ErrorCode.persisted_query_not_found)
        if params.get("query") not in (None, document):
            raise GatewayError(ErrorCode.invalid, "The query sent is not the document its "
                                                  "hash names.")
        return {**params, "query": document}

    def resolve_subscribe(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A WebSocket operation's payload resolved; a refused one carries its refusal as its
        query, which ``TrustedDocumentsCheck`` answers as that operation's typed error."""
        try:
            return self.resolve(payload)
        except GatewayError as refused:
            return {**payload, "query": REFUSED + refused.code.value + NOTHING}

    def refusal_of(self, query: str | None) -> GatewayError | None:
        """Why a query may not run: a refused WebSocket operation, or, with ``only``, text
        that is not a registered document."""
        if query is None:
            return None
        if query.startswith(REFUSED):
            code = ErrorCode(query.removeprefix(REFUSED).removesuffix(NOTHING))
            if code is ErrorCode.invalid:
                return GatewayError(code, "The `documentId` or `persistedQuery` is not one "
                                          "a document is registered under.")
            return refusal(code)
        if self.only and query not in self.texts:
            return refusal(ErrorCode.trusted_document_required)
        return None


def _named_hash(params: Mapping[str, Any]) -> str | None:
    """The hash a request names (``documentId`` or Apollo's ``persistedQuery``), if any."""
    document_id = params.get("documentId")
    if document_id is not None:
        found = DOCUMENT_ID.fullmatch(str(document_id))
        if found is None:
            raise GatewayError(ErrorCode.invalid,
                               "A `documentId` is \"sha256:\" and 64 lowercase hex digits.")
        return found.group(1)
    extensions = params.get("extensions")
    persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
    if persisted is None:
        return None
    named = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
    if not isinstance(named, str) or not HASH.fullmatch(named):
        raise GatewayError(ErrorCode.invalid, "`persistedQuery.sha256Hash` is 64 lowercase "
                                              "hex digits.")
    return named


class TrustedDocumentsCheck(SchemaExtension):
    """Over every transport, in place of validation: the WebSocket's refusals answered as
    the operation's typed error, and ``only`` held (HTTP refuses before this, with a 400)."""

    def __init__(self, documents: TrustedDocuments) -> None:
        self.documents = documents

    def on_validate(self) -> Iterator[None]:
        refused = self.documents.refusal_of(self.execution_context.query)
        if refused is not None:
            # Errors set before validation stand in its place (as a validation cache's do).
            self.execution_context.pre_execution_errors = [refused]
        yield


# --- the manifest, written at build time --------------------------------------------------


def _spreads(node: Node) -> Iterator[str]:
    """The names of the fragments spread anywhere under ``node``."""
    selection_set = getattr(node, "selection_set", None)
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FragmentSpreadNode):
            yield selection.name.value
        yield from _spreads(selection)


def operation_documents(source: str) -> dict[str, str]:
    """Each operation of ``source`` as a document of its own, with the fragments it uses,
    by operation name."""
    parsed = parse(source, no_location=True)
    fragments = {d.name.value: d for d in parsed.definitions
                 if isinstance(d, FragmentDefinitionNode)}
    found: dict[str, str] = {}
    for operation in parsed.definitions:
        if not isinstance(operation, OperationDefinitionNode):
            continue
        used: dict[str, FragmentDefinitionNode] = {}
        waiting = list(_spreads(operation))
        while waiting:
            name = waiting.pop()
            if name not in used:
                used[name] = fragments[name]
                waiting += _spreads(used[name])
        document = DocumentNode(definitions=(operation, *sorted(
            used.values(), key=lambda f: f.name.value)))
        name = operation.name.value if operation.name else "(anonymous)"
        found[name] = print_ast(document)
    return found


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, help="GraphQL files of operations")
    parser.add_argument("-o", "--output", type=Path, required=True,
                        help="the manifest to write (hash → document, JSON)")
    arguments = parser.parse_args(argv)
    manifest: dict[str, str] = {}
    for path in arguments.files:
        for name, document in operation_documents(path.read_text()).items():
            named = document_hash(document)
            manifest[named] = document
            print(f"{name} sha256:{named}")
    arguments.output.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
