"""The public surface of linq_eval, read from the source alone (no module is imported).

The rule: every module names what it exports in ``__all__``, a literal list; every name there
is defined or imported in the module (in a package's ``__init__``, also one of its submodules);
the module's public top-level definitions (``def``, ``class`` or assignment to a name without a
leading underscore) are exactly those of ``__all__`` that it defines, so everything else is
underscore-private; and every name a module (other than an ``__init__``) exports is either used
outside it (as a word in ``linq_eval/``, ``tests/`` or ``scripts/``) or is the type of a
parameter, return value or field of another name it exports that is.
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
TREES = {path: ast.parse(path.read_text(encoding="utf-8")) for path in MODULES}
WORDS = {path: set(re.findall(r"\w+", path.read_text(encoding="utf-8"))) for path in SEARCHED}


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
    problems = []
    for path, tree in TREES.items():
        if path.name == "__init__.py":
            continue
        definitions = _definitions(tree)
        exported = _exported(tree) or []
        others = [words for other, words in WORDS.items() if other != path]
        wanted = {name for name in exported if any(name in words for words in others)}
        grown = True
        while grown:  # the types in a wanted name's interface are wanted too
            types = set().union(
                *(_interface_types(definitions[n]) for n in wanted & set(definitions))
            )
            grown = bool(types & set(exported) - wanted)
            wanted |= types & set(exported)
        problems += [f"{_name(path)}: {name}" for name in exported if name not in wanted]
    assert not problems, (
        "exported names used nowhere outside their module (make them private with a leading "
        "underscore, or delete them if unused):\n" + "\n".join(problems)
    )
