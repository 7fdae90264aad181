"""Caches for work the emulator repeats without need: test suites and the bench turn them on.

Two costs dominate a short emulated run and neither depends on the run:

- moto's Step Functions parser builds the ANTLR parse tree of a definition on every
  `CreateStateMachine` (validation) and again on every `StartExecution`: seconds per
  definition on a loaded machine. The tree is a pure function of the definition text, so
  it is kept per text; the evaluation components are still built fresh from it for each
  call (`Preprocessor().visit(tree)`), so no execution shares state with another.
- every `boto3.Session` builds its own botocore data loader and re-reads the same service
  model JSON files. The loader only reads static files, so one per search path is shared.
- `template.yaml` and the bootstrap template are parsed (pure-Python YAML) by every
  `Emulator`. Parsed documents are kept per file *content* and handed out as deep
  copies, so an edited file is parsed again and no caller sees another's changes.

Syntax errors are never cached: a bad definition fails exactly as before, every time.
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import botocore.loaders
import botocore.session
from moto.stepfunctions.parser.asl.parse import asl_parser

from atc_xaccount_cli.local import authz, template

_lock = threading.Lock()
_trees: dict[str, Any] = {}


def _tree_of(definition: str) -> Any:
    """The ANTLR tree of a definition: parsed once per text (raises as moto does on syntax errors)."""
    with _lock:
        tree = _trees.get(definition)
    if tree is not None:
        return tree
    listener = asl_parser.SyntaxErrorListener()
    parser = asl_parser.ASLParser(asl_parser.CommonTokenStream(asl_parser.ASLLexer(asl_parser.InputStream(definition))))
    parser.removeErrorListeners()
    parser.addErrorListener(listener)
    tree = parser.state_machine()
    if listener.errors:
        raise asl_parser.ASLParserException(errors=listener.errors)
    with _lock:
        _trees[definition] = tree
    return tree


def _parse(definition: str) -> tuple[Any, Any]:
    tree = _tree_of(definition)
    return asl_parser.Preprocessor().visit(tree), tree


@functools.lru_cache(maxsize=8)
def _shared_loader(search_paths: str | None) -> botocore.loaders.Loader:
    return _original_create_loader(search_paths)


_original_create_loader = botocore.loaders.create_loader
_original_load_yaml = template.load_yaml
_documents: dict[tuple[str, str], Any] = {}


def _load_yaml(path: Path) -> dict[str, Any]:
    """`template.load_yaml`, parsed once per (file, content); a deep copy per caller."""
    text = path.read_text(encoding="utf-8")
    key = (str(path.resolve()), text)
    with _lock:
        document = _documents.get(key)
    if document is None:
        document = _original_load_yaml(path)
        with _lock:
            _documents[key] = document
    return copy.deepcopy(document)


def enable() -> None:
    """Turn both caches on for the rest of the process (idempotent)."""
    asl_parser.AmazonStateLanguageParser.parse = staticmethod(_parse)  # type: ignore[method-assign]
    botocore.session.create_loader = _shared_loader  # type: ignore[attr-defined]
    template.load_yaml = _load_yaml  # type: ignore[assignment]
    authz.load_yaml = _load_yaml  # type: ignore[assignment]


@contextmanager
def enabled() -> Iterator[None]:
    """The caches for the duration of the block (the originals restored after)."""
    original_parse = asl_parser.AmazonStateLanguageParser.__dict__["parse"]
    original_loader = botocore.session.create_loader  # type: ignore[attr-defined]
    enable()
    try:
        yield
    finally:
        asl_parser.AmazonStateLanguageParser.parse = original_parse  # type: ignore[method-assign]
        botocore.session.create_loader = original_loader  # type: ignore[attr-defined]
        template.load_yaml = authz.load_yaml = _original_load_yaml  # type: ignore[assignment]
