"""Code fingerprints of node types, so an edited algorithm cannot silently reuse stale cache entries.

Cache keys contain each node type's explicit ``version``, not its source: a whitespace or comment edit
must not invalidate a user's multi-GB cache. The risk of explicit versions is forgetting the bump. A lock
file records, per node type, its version and a fingerprint of its code: the module defining the node
function plus every module of the same package it imports, transitively (its helpers). The
fingerprint hashes the syntax tree with docstrings removed, so formatting and comments do not count. A
test compares the lock with the code and fails when the code changed but the version did not.

    python -m luckystack.graph.codehash LOCKFILE NODE_PACKAGE [--update]
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import json
import sys
from pathlib import Path

from luckystack.graph.node import NodeType, registry

ENGINE = "luckystack.graph"


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def _imports(tree: ast.AST, module: str) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                base = ".".join(module.split(".")[:-node.level] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def module_closure(module: str, prefix: str) -> dict[str, ast.AST]:
    """``module`` and every module under ``prefix`` it imports, transitively (engine excluded)."""
    seen: dict[str, ast.AST] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen or not name.startswith(prefix) or name.startswith(ENGINE):
            continue
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue  # "from pkg import function" names a function, not a module
        path = getattr(mod, "__file__", None)
        if not path or not path.endswith(".py"):
            continue
        tree = _strip_docstrings(ast.parse(Path(path).read_text(encoding="utf-8")))
        seen[name] = tree
        todo.extend(_imports(tree, name))
    return seen


def code_fingerprint(node: NodeType) -> str:
    """sha256 of the docstring-free syntax trees of the node's module and the modules of its top-level
    package that it imports, transitively."""
    module = node.func.__module__
    h = hashlib.sha256()
    for name, tree in sorted(module_closure(module, module.split(".")[0] + ".").items()):
        h.update(name.encode() + b"\0" + ast.dump(tree).encode() + b"\0")
    return "sha256:" + h.hexdigest()


def current(prefix: str) -> dict[str, dict[str, str]]:
    """Version and code fingerprint of every registered node type defined under ``prefix``."""
    return {name: {"version": t.version, "code": code_fingerprint(t)}
            for name, t in sorted(registry().items()) if t.func.__module__.startswith(prefix)}


def stale(lock: dict[str, dict[str, str]], now: dict[str, dict[str, str]]) -> list[str]:
    """One sentence per node type whose code changed while its version stayed the same."""
    problems = []
    for name, entry in now.items():
        old = lock.get(name)
        if old is None:
            problems.append(f"node type {name!r} is not in the lock file; add it with --update")
        elif old["version"] == entry["version"] and old["code"] != entry["code"]:
            problems.append(f"node type {name!r} changed since version {entry['version']!r} was locked: bump "
                            "its version if its output can change, then run --update")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    update = "--update" in args
    args = [a for a in args if a != "--update"]
    if len(args) != 2:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    lock_path, prefix = Path(args[0]), args[1]
    importlib.import_module(prefix)  # registers the node types
    now = current(prefix)
    if update:
        lock_path.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
        print(f"wrote {lock_path} ({len(now)} node types)")
        return 0
    lock = json.loads(lock_path.read_text()) if lock_path.is_file() else {}
    problems = stale(lock, now)
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
