"""The planes hold: who may import whom, read from the source with ``ast``.

The layout rules live in ``docs/architecture.md``; nothing stops a new import from breaking
them except this test. Every import counts for the plane rules — absolute or relative, at
module level, inside a function, under ``if TYPE_CHECKING:`` or spelled
``importlib.import_module("…")`` — because each is a dependency someone must know about.
Cycles are judged on every import that runs, at module level or inside a function: a cycle
hidden behind a function-local import is still two modules that cannot be understood, tested
or moved one without the other (and the function-local import is usually there only to dodge
the load-order failure). Imports under ``TYPE_CHECKING`` never run and name types only; they
do not count for cycles.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("signaling", "gateway")


LOAD, CALL, TYPING = "load", "call", "typing"


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, dotted
    target: str  # the imported module (or ``module.name`` for ``from module import name``)
    line: int
    when: str  # LOAD: runs as the module loads; CALL: inside a function; TYPING: never runs

    def __str__(self) -> str:
        return f"{self.source}:{self.line} imports {self.target}"


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    return {module_name(p, root): p
            for pkg in PACKAGES for p in sorted((root / pkg).rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _dynamic_target(call: ast.Call) -> str | None:
    """``importlib.import_module("x")`` / ``import_module("x")`` / ``__import__("x")``."""
    f = call.func
    name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
    if name not in ("import_module", "__import__") or not call.args:
        return None
    arg = call.args[0]
    return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None


def imports_of(source: str, module: str, is_package: bool) -> list[Import]:
    """Every import in ``source`` (the text of ``module``), resolved to dotted names."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[Import] = []

    def base_of(node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        parts = package.split(".")
        parts = parts[:len(parts) - (node.level - 1)]
        return ".".join([*parts, *([node.module] if node.module else [])])

    def visit(node: ast.AST, when: str) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(module, alias.name, node.lineno, when))
        elif isinstance(node, ast.ImportFrom):
            base = base_of(node)
            for alias in node.names:
                target = base if alias.name == "*" else f"{base}.{alias.name}"
                found.append(Import(module, target, node.lineno, when))
        elif isinstance(node, ast.Call) and (target := _dynamic_target(node)):
            found.append(Import(module, target, node.lineno, CALL if when == LOAD else when))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) \
                and when == LOAD:
            when = CALL
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, TYPING)
            for child in node.orelse:
                visit(child, when)
            visit(node.test, when)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, when)

    visit(ast.parse(source), LOAD)
    return found


def attribute_uses(source: str, dotted: str) -> list[int]:
    """Lines that spell ``dotted`` (e.g. ``aiohttp.web``) as an attribute chain."""
    head, _, attr = dotted.rpartition(".")
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr == attr \
                and ast.unparse(node.value) == head:
            lines.append(node.lineno)
    return lines


def all_imports(root: Path = ROOT) -> list[Import]:
    out: list[Import] = []
    for name, path in project_modules(root).items():
        out += imports_of(path.read_text(encoding="utf-8"), name, path.name == "__init__.py")
    return out


def resolve(target: str, known: set[str]) -> str | None:
    """The project module an import loads: ``a.b.C`` → ``a.b`` when ``C`` is not a module."""
    while target:
        if target in known:
            return target
        target = target.rpartition(".")[0]
    return None


def under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@dataclass(frozen=True)
class Cycle:
    modules: tuple[str, ...]  # one strongly connected component, sorted
    path: tuple[str, ...]  # one cycle through it: a → … → a

    def __str__(self) -> str:
        rest = [m for m in self.modules if m not in self.path]
        return " → ".join(self.path) + (f" (also in the cycle: {', '.join(rest)})" if rest else "")


def import_cycles(imports: list[Import], known: set[str],
                  kinds: tuple[str, ...] = (LOAD, CALL)) -> list[Cycle]:
    """Each cycle among the ``kinds`` of imports: one strongly connected component (Tarjan)."""
    graph: dict[str, set[str]] = {m: set() for m in known}
    for imp in imports:
        to = resolve(imp.target, known)
        if imp.when in kinds and to is not None and to != imp.source:
            graph[imp.source].add(to)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[Cycle] = []

    def connect(v: str) -> None:  # recursion depth is bounded by the module count
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comp.sort()
                components.append(Cycle(tuple(comp), _one_cycle(comp, graph)))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return components


def _one_cycle(comp: list[str], graph: dict[str, set[str]]) -> tuple[str, ...]:
    """A shortest path ``a → … → a`` from the component's first module, inside it."""
    members, start = set(comp), comp[0]
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & members):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    path.reverse()
                    return (*path, start)
                if w not in parent:
                    parent[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"{start} is in no cycle of {comp}")


def _report(bad: list[Import]) -> str:
    return "\n".join(str(i) for i in bad)


# --- the rules ------------------------------------------------------------------------------

IMPORTS = all_imports()


def test_signaling_knows_nothing_of_the_gateway():
    bad = [i for i in IMPORTS if under(i.source, "signaling") and under(i.target, "gateway")]
    assert not bad, "signaling must not import gateway:\n" + _report(bad)


def declared_messages(root: Path = ROOT) -> dict[str, str]:
    """Wire type → declaring module, for every ``@message("type", …)`` under ``gateway``."""
    out = {}
    for name, path in project_modules(root).items():
        if not under(name, "gateway"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                for d in node.decorator_list:
                    if isinstance(d, ast.Call) and ast.unparse(d.func) == "message" \
                            and d.args and isinstance(d.args[0], ast.Constant):
                        out[d.args[0].value] = name
    return out


def test_signaling_names_no_domain_message():
    """The edge treats messages by what they declare (``ROLES``, ``SETTLE``), never by name."""
    domain = declared_messages()
    assert "conversation.open" in domain  # the scan sees the declarations
    bad = []
    for name, path in project_modules().items():
        if under(name, "signaling"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and node.value in domain:
                    bad.append(f"{name}:{node.lineno} names {node.value!r} "
                               f"(declared in {domain[node.value]})")
    assert not bad, "signaling must not know domain messages by name:\n" + "\n".join(bad)


def test_support_does_not_import_media():
    bad = [i for i in IMPORTS
           if under(i.source, "gateway.support") and under(i.target, "gateway.media")]
    assert not bad, "gateway/support must not import gateway/media:\n" + _report(bad)


def test_media_reaches_support_only_through_its_port():
    bad = [i for i in IMPORTS
           if under(i.source, "gateway.media") and under(i.target, "gateway.support")]
    assert not bad, ("gateway/media must not import gateway/support (declare what media "
                     "needs in gateway/media/port.py):\n" + _report(bad))


def test_support_does_not_speak_http():
    bad = [i for i in IMPORTS if under(i.source, "gateway.support")
           and (under(i.target, "aiohttp.web") or i.target.startswith("aiohttp.web_")
                or under(i.target, "gateway.http_api"))]
    for name, path in project_modules().items():
        if under(name, "gateway.support"):
            bad += [Import(name, "aiohttp.web", line, LOAD)
                    for line in attribute_uses(path.read_text(encoding="utf-8"), "aiohttp.web")]
    assert not bad, ("gateway/support must not use aiohttp.web or gateway.http_api (HTTP "
                     "handlers live in gateway/http_api.py):\n" + _report(bad))


def test_no_import_cycles():
    cycles = import_cycles(IMPORTS, set(project_modules()))
    assert not cycles, ("import cycles (module-level and function-local imports):\n"
                        + "\n".join(map(str, cycles)))


# --- the parser itself ----------------------------------------------------------------------

def test_the_parser_sees_every_kind_of_import():
    src = textwrap.dedent("""
        import os
        from . import sibling
        from ..other import thing
        from .sub.deep import name as alias
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            from gateway.app import Gateway
        else:
            import json
        try:
            import fast
        except ImportError:
            fast = None
        class K:
            import inside_class
        def f():
            from gateway.support import service
            importlib.import_module("gateway.media.peer")
        async def g():
            lazy = lambda: __import__("secrets")
    """)
    got = {(i.target, i.when) for i in imports_of(src, "gateway.media.service", False)}
    assert got == {
        ("os", LOAD), ("gateway.media.sibling", LOAD), ("gateway.other.thing", LOAD),
        ("gateway.media.sub.deep.name", LOAD), ("typing.TYPE_CHECKING", LOAD),
        ("gateway.app.Gateway", TYPING), ("json", LOAD), ("fast", LOAD),
        ("inside_class", LOAD), ("gateway.support.service", CALL),
        ("gateway.media.peer", CALL), ("secrets", CALL),
    }
    # a package's relative imports start from the package itself
    pkg = {i.target for i in imports_of("from .hub import Hub\nfrom . import x\n",
                                        "signaling", True)}
    assert pkg == {"signaling.hub.Hub", "signaling.x"}


def test_the_cycle_finder_names_the_modules():
    known = {"p.a", "p.b", "p.c", "p.d"}
    imports = [Import("p.a", "p.b.X", 1, LOAD), Import("p.b", "p.c", 1, CALL),
               Import("p.c", "p.a", 1, LOAD), Import("p.d", "p.a", 1, LOAD),
               Import("p.a", "p.d", 1, TYPING)]  # a type name only: not a cycle
    assert [c.path for c in import_cycles(imports, known)] == [("p.a", "p.b", "p.c", "p.a")]
    assert import_cycles(imports, known, kinds=(LOAD,)) == []
    assert attribute_uses("import aiohttp\nr = aiohttp.web.Response()\n", "aiohttp.web") == [2]
