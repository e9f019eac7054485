"""The public surface of linq_eval, read from the source alone (no module is imported).

The rule: every module names what it exports in ``__all__``, a literal list; every name there
is defined or imported in the module (in a package's ``__init__``, also one of its submodules);
the module's public top-level definitions (``def``, ``class`` or assignment to a name without a
leading underscore) are exactly those of ``__all__`` that it defines, so everything else is
underscore-private; and every name a module (other than an ``__init__``) exports is either used
outside it *as that module's name* (in ``linq_eval/``, ``tests/``, ``scripts/`` or ``.ci/``) or
is the type of a parameter, return value or field of another name it exports that is.

A use as that module's name: ``from <module> import <name>`` (also relative, and inside a
function); ``<module>.<name>`` where the first part is bound to the module by an import;
``getattr``/``setattr``/``monkeypatch.setattr(<module>, "<name>", ...)``; the dotted string
``"<module>.<name>"`` (``mock.patch``, ``python -c`` code, an entry point ``<module>:<name>``).
A package ``__init__`` that only re-exports a name passes each use of the package's name on to
the module it imports it from. A word match is not a use: ``query_report.query_diffs`` says
nothing about ``report.query_diffs``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = REPO_ROOT / "linq_eval"
MODULES = sorted(PACKAGE.rglob("*.py"))
SEARCHED = [*MODULES, *sorted((REPO_ROOT / "tests").rglob("*.py"))]
SEARCHED += sorted((REPO_ROOT / "scripts").rglob("*.py"))
SEARCHED_TEXT = [p for p in (REPO_ROOT / "scripts").rglob("*") if p.is_file() and p.suffix != ".py"]
SEARCHED_TEXT += [*sorted((REPO_ROOT / ".ci").rglob("*")), REPO_ROOT / "pyproject.toml"]
"""Files that are not Python but hold Python (``python -c "from linq_eval.x import y"``) or
an entry point (``linq_eval.cli:main``)."""
PARSED = {path: ast.parse(path.read_text(encoding="utf-8")) for path in SEARCHED}
TREES = {path: PARSED[path] for path in MODULES}


def _dotted(path: Path) -> str:
    """``linq_eval/results/report.py`` -> ``linq_eval.results.report``; an ``__init__`` is its
    package's name."""
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULE_NAMES = {_dotted(path): path for path in MODULES}


def _split(dotted: str) -> tuple[str, str] | None:
    """``linq_eval.a.b.name.more`` -> (``linq_eval.a.b``, ``name``): the longest module prefix
    and the name after it (None when no linq_eval module is named with a name after it)."""
    parts = dotted.split(".")
    for end in range(len(parts) - 1, 0, -1):
        if ".".join(parts[:end]) in MODULE_NAMES:
            return ".".join(parts[:end]), parts[end]
    return None


FROM_IMPORT = re.compile(r"from\s+(linq_eval[\w.]*)\s+import\s+\(?([\w\s,]+)")
DOTTED = re.compile(r"\blinq_eval(?:\.\w+)+(?::\w+)?")


def _text_uses(text: str) -> set[tuple[str, str]]:
    """Uses in Python code or references held as text: ``from M import a, b`` and
    ``M.name`` or ``M:name``."""
    uses = set()
    for module, names in FROM_IMPORT.findall(text):
        uses |= {(module, name) for name in re.findall(r"\w+", names.split("\n\n")[0])}
    for dotted in DOTTED.findall(text):
        found = _split(dotted.replace(":", "."))
        uses |= {found} if found else set()
    return uses


def _docstrings(tree: ast.Module) -> set[int]:
    """The ids of the docstring nodes (text about names, not uses of them)."""
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list):
            found |= {id(stmt.value) for stmt in body if isinstance(stmt, ast.Expr)}
    return found


def _parametrized_modules(node: ast.AST, bound: dict[str, set[str]]) -> dict[str, set[str]]:
    """``@pytest.mark.parametrize("module", [a, b])`` where a and b are modules: the argument
    is bound to each of them."""
    found: dict[str, set[str]] = {}
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "parametrize"
        and len(node.args) == 2
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[1], (ast.List, ast.Tuple))
    ):
        names = node.args[1].elts
        if names and all(isinstance(n, ast.Name) and n.id in bound for n in names):
            found[node.args[0].value] = set().union(*(bound[n.id] for n in names))
    return found


def _uses(path: Path, tree: ast.Module) -> tuple[set[tuple[str, str]], dict]:
    """What ``path`` uses as a module's name, (module, name) pairs; and for a package
    ``__init__``, the names it only re-exports: {(package, name): (module, name)}. Python code
    held in a string (``python -c``) counts as the file's own."""
    package = _dotted(path) if path.name == "__init__.py" else _dotted(path).rpartition(".")[0]
    loaded = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    is_init = path.name == "__init__.py"
    bound: dict[str, set[str]] = {}  # a local name -> the modules it is bound to
    uses: set[tuple[str, str]] = set()
    reexports: dict[tuple[str, str], tuple[str, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                bound.setdefault(local, set()).add(alias.name if alias.asname else local)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([module] if module else [])])
            for alias in node.names:
                local = alias.asname or alias.name
                if f"{module}.{alias.name}" in MODULE_NAMES:
                    bound.setdefault(local, set()).add(f"{module}.{alias.name}")
                elif is_init and local not in loaded:
                    reexports[(_dotted(path), local)] = (module, alias.name)
                else:
                    uses.add((module, alias.name))
    for node in ast.walk(tree):
        for name, modules in _parametrized_modules(node, bound).items():
            bound.setdefault(name, set()).update(modules)
    docstrings = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain = []
            inner: ast.expr = node
            while isinstance(inner, ast.Attribute):
                chain.insert(0, inner.attr)
                inner = inner.value
            for module in bound.get(inner.id, ()) if isinstance(inner, ast.Name) else ():
                found = _split(".".join([module, *chain]))
                uses |= {found} if found else set()
        elif isinstance(node, ast.Call) and len(node.args) >= 2:
            target, name = node.args[:2]  # getattr(module, "name"), monkeypatch.setattr(...)
            if isinstance(target, ast.Name) and isinstance(name, ast.Constant):
                uses |= {(module, name.value) for module in bound.get(target.id, ())}
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) in docstrings or "linq_eval" not in node.value:
                continue
            uses |= _text_uses(node.value)
            try:
                code = ast.parse(node.value)
            except SyntaxError:
                continue
            uses |= _uses(path, code)[0]
    return uses, reexports


def _uses_by_file() -> dict[Path, set[tuple[str, str]]]:
    """Every searched file's uses, each use of a name a package only re-exports passed on to
    the module it comes from."""
    found = {path: _uses(path, tree) for path, tree in PARSED.items()}
    reexports = {key: origin for _, again in found.values() for key, origin in again.items()}
    by_file = {path: uses for path, (uses, _) in found.items()}
    by_file |= {path: _text_uses(path.read_text(encoding="utf-8")) for path in SEARCHED_TEXT}
    for uses in by_file.values():
        todo = list(uses)
        while todo:
            origin = reexports.get(todo.pop())
            if origin is not None and origin not in uses:
                uses.add(origin)
                todo.append(origin)
    return by_file


def _top_level(tree: ast.Module) -> list[ast.stmt]:
    """The module's statements, with those under a top-level ``if`` or ``try`` block."""
    found: list[ast.stmt] = []
    todo = list(tree.body)
    while todo:
        node = todo.pop(0)
        found.append(node)
        if isinstance(node, ast.If):
            todo += node.body + node.orelse
        elif isinstance(node, ast.Try):
            todo += node.body + node.orelse + node.finalbody
            for handler in node.handlers:
                todo += handler.body
    return found


def _assigned(target: ast.expr) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [name for element in target.elts for name in _assigned(element)]
    return []


def _definitions(tree: ast.Module) -> dict[str, ast.stmt]:
    """Each name a top-level ``def``, ``class`` or assignment binds, with its statement."""
    defined: dict[str, ast.stmt] = {}
    for node in _top_level(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined[node.name] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                defined.update(dict.fromkeys(_assigned(target), node))
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            defined.update(dict.fromkeys(_assigned(node.target), node))
    defined.pop("__all__", None)
    return defined


def _imported(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in _top_level(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return names


def _exported(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        targets += [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(target, ast.Name) and target.id == "__all__" for target in targets):
            value = getattr(node, "value", None)
            assert isinstance(value, ast.List), "__all__ is not a literal list"
            return [ast.literal_eval(element) for element in value.elts]
    return None


def _annotation_names(annotation: ast.expr | None) -> set[str]:
    """The names a type annotation mentions, also inside string annotations."""
    names: set[str] = set()
    for node in ast.walk(annotation) if annotation is not None else ():
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names |= set(re.findall(r"\w+", node.value))
    return names


def _signature_names(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    arguments = node.args
    every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
    every += [arg for arg in (arguments.vararg, arguments.kwarg) if arg is not None]
    names = _annotation_names(node.returns)
    for argument in every:
        names |= _annotation_names(argument.annotation)
    return names


def _interface_types(node: ast.stmt) -> set[str]:
    """The names in the types of a definition's parameters, return value and fields (for a
    class: its annotated fields and the signatures of its public methods)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return _signature_names(node)
    names: set[str] = set()
    if isinstance(node, ast.ClassDef):
        for item in node.body:
            if isinstance(item, ast.AnnAssign):
                names |= _annotation_names(item.annotation)
            elif isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
                not item.name.startswith("_") or item.name.startswith("__")
            ):
                names |= _signature_names(item)
    elif isinstance(node, ast.AnnAssign):
        names |= _annotation_names(node.annotation)
    return names


def _name(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT))


def test_every_module_defines_all_as_a_literal_list():
    missing = [_name(path) for path, tree in TREES.items() if _exported(tree) is None]
    assert not missing, f"modules without __all__: {missing}"


def test_every_exported_name_exists_in_its_module():
    problems = []
    for path, tree in TREES.items():
        known = set(_definitions(tree)) | _imported(tree) | {"__version__"}
        if path.name == "__init__.py":
            known |= {child.stem for child in path.parent.glob("*.py")}
            known |= {child.parent.name for child in path.parent.glob("*/__init__.py")}
        exported = _exported(tree) or []
        problems += [f"{_name(path)}: {name}" for name in exported if name not in known]
        repeated = {name for name in exported if exported.count(name) > 1}
        problems += [f"{_name(path)}: {name} listed twice" for name in sorted(repeated)]
    assert not problems, "names in __all__ that the module neither defines nor imports:\n" + (
        "\n".join(problems)
    )


def test_public_definitions_are_exactly_the_exported_ones():
    problems = []
    for path, tree in TREES.items():
        exported = set(_exported(tree) or [])
        public = {name for name in _definitions(tree) if not name.startswith("_")}
        problems += [f"{_name(path)}: {name}" for name in sorted(public - exported)]
    assert not problems, (
        "public top-level names missing from __all__ (export them or add a leading "
        "underscore):\n" + "\n".join(problems)
    )


def test_every_exported_name_is_used_outside_its_module_or_is_a_type_of_one_that_is():
    by_file = _uses_by_file()
    problems = []
    unused = set()
    for path, tree in TREES.items():
        if path.name == "__init__.py":
            continue
        module = _dotted(path)
        definitions = _definitions(tree)
        exported = _exported(tree) or []
        used = {
            name
            for other, uses in by_file.items()
            if other != path
            for m, name in uses
            if m == module
        }
        wanted = set(exported) & used
        grown = True
        while grown:  # the types in a wanted name's interface are wanted too
            types = set().union(
                *(_interface_types(definitions[n]) for n in wanted & set(definitions))
            )
            grown = bool(types & set(exported) - wanted)
            wanted |= types & set(exported)
        unused |= {(module, name) for name in exported if name not in wanted}
    problems = [f"{module}: {name}" for module, name in sorted(unused)]
    assert not problems, (
        "exported names used nowhere outside their module as its name (make them private with "
        "a leading underscore, or delete them if unused):\n" + "\n".join(problems)
    )
