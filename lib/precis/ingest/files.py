"""Which new landed files a batch takes: pure functions over listings and schemas.

A file still arriving waits (``ready``): one modified too recently
(``ingest.settle_seconds``), or one whose folder has no ``_SUCCESS`` marker yet
(``ingest.require_marker``). It is left for the next run and not recorded anywhere.

A parquet file whose columns cannot be read with the types of the rest of the dataset
is rejected (``type_reasons``): the parquet reader reads every file of a batch with one
type per column and cannot turn a string into a double, so one drifted file would fail
every run of its dataset. It is recorded as rejected instead, and the others go on.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass

from pyspark.sql.types import ArrayType, BinaryType, DataType, MapType, StructType

from precis.schemas import DatasetSpec
from precis.storage.landing import LandingFile
from precis.storage.schema import nullable


@dataclass(frozen=True)
class Waiting:
    """A file left for the next run, and why."""

    file: LandingFile
    why: str


@dataclass(frozen=True)
class Rejected:
    """A file left out of its batch for good (until it changes), and why."""

    file: LandingFile
    reason: str
    rows: int | None = None  # known for a parquet file whose footer reads


def write_folder(path: str) -> str:
    """The folder a file was written to: its own, or for files in partition folders
    (``day=2026-01-01``) the folder above them, where Spark writes its ``_SUCCESS``."""
    parts = path.rstrip("/").split("/")[:-1]
    while len(parts) > 1 and "=" in parts[-1]:
        parts.pop()
    return "/".join(parts)


def ready(
    files: Sequence[LandingFile],
    now_ms: int,
    settle_seconds: int = 0,
    marked: Set[str] | None = None,
) -> tuple[list[LandingFile], list[Waiting]]:
    """(files to read now, files still arriving). ``now_ms`` is the time of the run in
    epoch milliseconds; ``marked``, when markers are required, the write folders
    (``write_folder``) that hold a ``_SUCCESS`` file."""
    take: list[LandingFile] = []
    wait: list[Waiting] = []
    for f in files:
        age = (now_ms - f.modified) / 1000
        if settle_seconds and age < settle_seconds:
            why = f"modified {age:.0f} s ago, less than ingest.settle_seconds ({settle_seconds})"
            wait.append(Waiting(f, why))
        elif marked is not None and write_folder(f.path) not in marked:
            wait.append(Waiting(f, f"no _SUCCESS in {write_folder(f.path)} yet"))
        else:
            take.append(f)
    return take, wait


#: What Spark says when a file's content is broken, as opposed to the file system or the
#: network failing: no parquet footer (or one that does not decode), a truncated or
#: corrupt compressed stream.
BROKEN = (
    "is not a Parquet file",
    "TTransportException",
    "TProtocolException",
    "Unexpected end of input stream",
    "Unexpected end of ZLIB input stream",
    "Not in GZIP format",
    "invalid literal/length code",
    "invalid distance",
    "invalid block type",
    "invalid stored block lengths",
    "invalid code lengths set",
    "incorrect header check",
)


def unreadable(error: str) -> str | None:
    """The reason to reject a file that failed to read on its own with ``error`` (an
    exception's text), or None when the error does not say its content is broken: then
    the run fails the dataset and the next run tries again, since a good file rejected
    for a network error would be left out until it changes."""
    if not any(sign in error for sign in BROKEN):
        return None
    return "unreadable: " + cause(error)


#: How Spark 4 names the file a task failed to read (``FAILED_READ_FILE``): the URI,
#: then a full stop.
_FAILED_READ = re.compile(r"Encountered error while reading file (\S+?)\.?(?:\s|$)")


def failed_file(error: str) -> str | None:
    """The file Spark says it failed to read in ``error`` (an exception's text), or
    None. Content broken past the footer (a damaged data page or compressed block) shows
    only when the rows are read, so it fails a whole batch's write, naming the file."""
    found = _FAILED_READ.search(error)
    return found.group(1) if found else None


def cause(error: str) -> str:
    """Spark's innermost reason in an exception's text (a JVM stack trace's last
    ``Caused by``), on one line, without the exception's class."""
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    causes = [line.split("Caused by: ", 1)[1] for line in lines if line.startswith("Caused by: ")]
    line = causes[-1] if causes else (lines[0] if lines else "unknown error")
    return re.sub(r"^[\w.$]+(Exception|Error): ", "", line)[:300]


def castable(data_type: DataType) -> bool:
    """Whether ingest can type a landed column of this type: through its text
    (``conform.typed``), which a struct, array, map or binary value does not have."""
    return not isinstance(data_type, StructType | ArrayType | MapType | BinaryType)


def type_reasons(
    schemas: Mapping[str, StructType],
    spec: DatasetSpec,
    known: Mapping[str, DataType],
    where: str,
) -> dict[str, str]:
    """The reason to reject each file (by path) whose columns do not fit; fitting files
    are left out.

    A contract column must hold a type ``castable`` to the contract's. And every file of
    a batch must hold one type per column: the type ``known`` from earlier batches
    (``where``, the bronze table, holds it), else the contract's type if a file has it,
    else the type most files have (the first file's on a tie). So the file that keeps
    the contract is never the one rejected, and a rerun of the same files decides the
    same way. Nullability does not count.
    """
    contract = dict(spec.columns)
    reference = _reference(schemas.values(), contract, known, where)
    reasons: dict[str, str] = {}
    for path, schema in schemas.items():
        found = []
        for field in schema.fields:
            got, name = nullable(field.dataType), field.name
            if name in contract and not castable(got):
                to = contract[name].simpleString()
                found.append(f"{name} is {got.simpleString()}, which cannot be cast to {to}")
            elif name in reference and got != reference[name][0]:
                want, source = reference[name]
                found.append(
                    f"{name} is {got.simpleString()}, not {want.simpleString()} ({source})"
                )
        if found:
            reasons[path] = "type drift: " + "; ".join(found)
    return reasons


def _reference(
    schemas: Iterable[StructType],
    contract: Mapping[str, DataType],
    known: Mapping[str, DataType],
    where: str,
) -> dict[str, tuple[DataType, str]]:
    seen: dict[str, list[DataType]] = {}
    for schema in schemas:
        for field in schema.fields:
            seen.setdefault(field.name, []).append(nullable(field.dataType))
    reference: dict[str, tuple[DataType, str]] = {}
    for name, types in seen.items():
        if name in known:
            reference[name] = (nullable(known[name]), f"as {where} holds it")
        elif name in contract and contract[name] in types:
            reference[name] = (contract[name], "the contract's type")
        else:
            # most_common keeps first-seen order among equal counts: the first file wins.
            reference[name] = (Counter(types).most_common(1)[0][0], "the type of most files")
    return reference
