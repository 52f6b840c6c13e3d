"""Code fingerprints ignore formatting, comments and docstrings, and see real edits in imported modules."""

import importlib
import sys
import textwrap

from luckystack.graph.codehash import code_fingerprint
from luckystack.graph.node import registry


def _node_package(root, maths: str, node_extra: str = "") -> str:
    pkg = root / "lskfp"
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "maths.py").write_text(textwrap.dedent(maths))
    (pkg / "node.py").write_text(textwrap.dedent(f'''
        from luckystack.graph.node import Params, Result, node_type
        from lskfp.maths import double
        {node_extra}
        class P(Params):
            pass

        @node_type("t-fingerprinted", params=P, version="1")
        def fingerprinted(ctx):
            return Result(meta={{"x": double(1)}})
        '''))
    for name in [m for m in sys.modules if m.startswith("lskfp")]:
        del sys.modules[name]
    registry().pop("t-fingerprinted", None)
    importlib.invalidate_caches()
    importlib.import_module("lskfp.node")
    return code_fingerprint(registry()["t-fingerprinted"])


def test_fingerprint_follows_code_not_formatting(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    base = _node_package(tmp_path, "def double(x):\n    return 2 * x\n")
    reformatted = _node_package(tmp_path, '"""Doc."""\n\n\ndef double(x):  # twice\n    return 2*x\n')
    edited = _node_package(tmp_path, "def double(x):\n    return x + x\n")
    assert base == reformatted
    assert edited != base
    registry().pop("t-fingerprinted", None)
