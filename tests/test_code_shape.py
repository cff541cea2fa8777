"""The code keeps the shape the project chose (README, "Development"): small job modules
that read, build, write and report; library modules of a readable size; every join
saying how it joins; every table named by the catalog; every column name that crosses
modules named by its constant.

These read the source, not Spark: they run in a second.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from precis import tables as T

LIB = Path(__file__).resolve().parents[1] / "lib" / "precis"
JOBS = LIB / "jobs"
JOB_LINES = 150
LIBRARY_LINES = 500


def _modules(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines())


@pytest.mark.parametrize("path", _modules(JOBS), ids=lambda p: p.name)
def test_job_modules_fit_on_a_few_screens(path):
    assert _lines(path) <= JOB_LINES, (
        f"{path.name}: {_lines(path)} lines; move transforms into the library"
    )


@pytest.mark.parametrize(
    "path",
    [p for p in _modules(LIB) if JOBS not in p.parents],
    ids=lambda p: str(p.relative_to(LIB)),
)
def test_library_modules_stay_readable(path):
    assert _lines(path) <= LIBRARY_LINES, f"{path}: {_lines(path)} lines; split the module"


def _joins_without_how(path: Path) -> list[int]:
    """Lines of ``x.join(other, on)`` calls that leave the join type to the default."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "join"
            # str.join and os.path.join take one argument; DataFrame.join takes 1 to 3.
            and not (isinstance(node.func.value, ast.Constant))
            and len(node.args) >= 2
            and len(node.args) < 3
            and not any(k.arg == "how" for k in node.keywords)
        ):
            found.append(node.lineno)
    return found


def test_every_join_says_how():
    missing = {
        str(p.relative_to(LIB)): lines for p in _modules(LIB) if (lines := _joins_without_how(p))
    }
    assert not missing, f"joins without how= (file: lines): {missing}"


def _catalog_names() -> set[str]:
    names = {t.name for t in vars(T).values() if isinstance(t, T.Table)}
    return names | set(T.SILVER) | set(T.BRONZE) | set(T.TRUTH)


def test_no_table_is_named_outside_the_catalog():
    # A table's name as a string, next to a layer: lake.read("gold", "identity_map") and
    # f"{root}/gold/identity_map" style paths. Dataset names alone are contract terms
    # (landing datasets, tag sources) and stay.
    layer = "(?:bronze|silver|gold|meta|truth)"
    pattern = re.compile(rf"""["']{layer}["']\s*,\s*["'](\w+)["']|/{layer}/(\w+)""")
    found = []
    for path in _modules(LIB):
        if path == LIB / "tables.py":
            continue
        for lineno, line in enumerate(path.read_text().splitlines(), start=1):
            if line.lstrip().startswith("#"):
                continue
            for match in pattern.finditer(line):
                name = match.group(1) or match.group(2)
                if name in _catalog_names():
                    found.append(f"{path.relative_to(LIB)}:{lineno}: {line.strip()}")
    assert not found, "table names outside precis.tables:\n" + "\n".join(found)


def _shared_column_literals(path: Path, names: set[str]) -> list[int]:
    """Lines where code (not a docstring) spells a shared column's name as a string."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    # Inside an f-string a name is part of a message or a SQL expression: text, not code.
    in_text = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr)
        for inner in ast.walk(node)
    }
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value in names
        and id(node) not in docstrings | in_text
    ]


def test_shared_columns_are_named_by_their_constant():
    from precis import columns

    names = {v for k, v in vars(columns).items() if k.isupper() and isinstance(v, str)}
    found = {
        str(p.relative_to(LIB)): lines
        for p in _modules(LIB)
        if p != LIB / "columns.py" and (lines := _shared_column_literals(p, names))
    }
    assert not found, f"use precis.columns for these names (file: lines): {found}"


def test_lineage_is_cut_through_frames():
    """``frames.cut`` picks a reliable checkpoint on a cluster; a direct local checkpoint
    would be lost with its executor, and Spark would recompute rows that may differ."""
    found = [
        f"{p.relative_to(LIB)}:{n}"
        for p in _modules(LIB)
        if p != LIB / "frames.py"
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if ".localCheckpoint(" in line
    ]
    assert not found, f"use precis.frames.cut: {found}"


def test_every_job_has_its_entry_file():
    # spark-submit and schedulers point at jobs/<job>.py in a checkout.
    from precis.jobs import JOBS as NAMES

    entry = LIB.parents[1] / "jobs"
    assert {p.stem for p in entry.glob("*.py")} - {"__init__"} == set(NAMES)
    for name in NAMES:
        assert f"from precis.jobs.{name} import main, run" in (entry / f"{name}.py").read_text()
