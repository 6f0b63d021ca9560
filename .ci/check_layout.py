"""The package's shape, checked by .ci/run: sizes, deferred imports, and no import cycles.

- no class longer than 350 lines and no function longer than 60 in queuectl/;
- an import inside a function only to defer a heavy dependency, with a comment that says so
  (on one of the lines of that block of imports, or on the line just above it);
- no import cycle among queuectl's modules, imports inside functions counted (TYPE_CHECKING ones not).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import grimp

MAX_CLASS = 350
MAX_FUNCTION = 60
ROOT = Path(__file__).resolve().parent.parent / "queuectl"


def sizes(path: Path, tree: ast.Module) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            limit = MAX_CLASS if isinstance(node, ast.ClassDef) else MAX_FUNCTION
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > limit:
                yield f"{path}:{node.lineno}: {node.name} is {length} lines long (at most {limit})"


def deferred_imports(path: Path, tree: ast.Module, lines: list[str]) -> Iterator[str]:
    """Blocks of imports inside functions (lines apart only by blank ones) without a comment on any line."""
    found: set[int] = set()
    for func in ast.walk(tree):
        if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(func):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    found.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    block: list[int] = []
    for number in [*sorted(found), 10**9]:
        if block and not _adjacent(lines, block[-1], number):
            above = lines[block[0] - 2].strip() if block[0] > 1 else ""
            if not above.startswith("#") and not any("#" in lines[n - 1] for n in block):
                yield f"{path}:{block[0]}: an import inside a function needs a comment saying what it defers"
            block = []
        block.append(number)


def _adjacent(lines: list[str], last: int, number: int) -> bool:
    return number < len(lines) + 1 and all(not lines[n - 1].strip() for n in range(last + 1, number))


def cycles() -> Iterator[str]:
    graph = grimp.build_graph("queuectl", exclude_type_checking_imports=True)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    for start in sorted(graph.modules):
        if start not in index:
            yield from _strongly_connected(graph, start, index, low, stack)


def _strongly_connected(
    graph: grimp.ImportGraph, start: str, index: dict[str, int], low: dict[str, int], stack: list[str]
) -> Iterator[str]:
    """Tarjan's algorithm without recursion: each component of more than one module is a cycle."""
    on_stack: set[str] = set(stack)
    work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
    index[start] = low[start] = len(index)
    stack.append(start)
    on_stack.add(start)
    while work:
        node, children = work[-1]
        child = next(children, None)
        if child is not None:
            if child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
            continue
        work.pop()
        if work:
            low[work[-1][0]] = min(low[work[-1][0]], low[node])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                yield f"import cycle: {' <-> '.join(sorted(component))}"


def main() -> int:
    problems: list[str] = []
    for path in sorted(ROOT.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        shown = path.relative_to(ROOT.parent)
        problems += sizes(shown, tree)
        problems += deferred_imports(shown, tree, text.splitlines())
    problems += cycles()
    for problem in problems:
        print(problem)
    print(f"layout: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
