"""``rongxin fp add | add-dir | query | query-dir | remove | stats`` and ``rongxin bench fingerprint``.

Thin wrappers over ``fingerprint.service``: fingerprint errors become one-line messages with
exit code 2 (unusable input); a query that finds nothing still exits 0 with ``"matches": []``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from .errors import EnvironmentProblem, InputError
from .io import emit, table

F = TypeVar("F", bound=Callable[..., Any])

JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
INDEX = click.option("--index", "index_dir", required=True, type=click.Path(file_okay=False),
                     help="Index folder (created by the first add).")
WORKERS = click.option("--workers", type=click.IntRange(1, 64), default=None,
                       help="Processes that fingerprint files (default: one per core).")


@contextmanager
def _errors() -> Iterator[None]:
    from fingerprint.errors import DependencyMissing, FingerprintError

    try:
        yield
    except DependencyMissing as exc:
        raise EnvironmentProblem(str(exc)) from None
    except FingerprintError as exc:
        raise InputError(str(exc)) from None


def _dump(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


@click.group()
def fp() -> None:
    """Content fingerprints of images, audio, video and text: register and find copies.

    \b
    The modality is detected from the file's content, not its name.
    Exit codes: 0 ok (also for a query that finds nothing); 2 unusable input.
    """


@fp.command("add")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--id", "work_id", required=True, help="Work id to register the file under.")
@INDEX
@click.option("--replace", is_flag=True, help="Replace a work already registered under this id.")
@JSON
def fp_add(file: str, work_id: str, index_dir: str, replace: bool, as_json: bool) -> None:
    """Fingerprint FILE and register it in the index as WORK_ID."""
    from fingerprint.formats import recognition
    from fingerprint.service import add_file

    with _errors():
        f = add_file(file, work_id, index_dir, replace=replace)
    rec = recognition(f)
    emit({"work_id": work_id, "modality": f.modality.value, "sm3": f.sm3, "format_version": f.version,
          "recognition": rec},
         as_json, f"registered {file} as {work_id} ({f.modality.value}, sm3 {f.sm3}; recognition {rec['level']})")


@fp.command("add-dir")
@click.argument("folder", type=click.Path(file_okay=False))
@INDEX
@WORKERS
@click.option("--replace", is_flag=True, help="Replace works already registered under the same id.")
@click.option("--progress/--no-progress", default=True, help="Progress bar on stderr.")
@JSON
def fp_add_dir(folder: str, index_dir: str, workers: int | None, replace: bool, progress: bool,
               as_json: bool) -> None:
    """Register every file under FOLDER; the work id is the file's path relative to FOLDER.

    A file that cannot be fingerprinted is reported on stderr and skipped; the others are
    indexed, each committed on its own. Exit 2 only when files failed and none was added."""
    from fingerprint.service import add_dir

    with _errors():
        report = add_dir(folder, index_dir, replace=replace, workers=workers, progress=progress)
    for name, reason in report.failed:
        click.echo(f"rongxin: skipped {name}: {reason}", err=True)
    emit({"added": len(report.added), "failed": [{"file": n, "error": r} for n, r in report.failed]},
         as_json, f"added {len(report.added)} file(s), skipped {len(report.failed)}")
    if report.failed and not report.added:
        sys.exit(2)


@fp.command("query")
@click.argument("file", type=click.Path(dir_okay=False))
@INDEX
@JSON
def fp_query(file: str, index_dir: str, as_json: bool) -> None:
    """Find registered works that FILE copies (best first), with offsets for audio and video."""
    from fingerprint.service import query_file

    if not (Path(index_dir) / "fingerprints.sqlite").exists():
        raise InputError(f"index {index_dir}: no index here")
    with _errors():
        result = query_file(file, index_dir)
    obj = result.as_dict()
    if as_json:
        _dump(obj)
        return
    # one row per occurrence: a work found at several places (a looped passage) has a row each
    rows: list[tuple[str, float, float | None, float | None, float | None]] = [
        (m.work_id, round(g.score, 4), round(g.query_start_s, 3), round(g.work_start_s, 3), round(g.duration_s, 3))
        for m in result.matches for g in m.segments]
    rows += [(m.work_id, round(m.score, 4), None, None, None) for m in result.matches if not m.segments]
    print(f"{file}: {result.modality}, {len(result.matches)} match(es), {len(rows)} occurrence(s)")
    if rows:
        print(table(rows, ("work", "score", "query start s", "work start s", "duration s")))


@fp.command("query-dir")
@click.argument("folder", type=click.Path(file_okay=False))
@INDEX
@WORKERS
@click.option("--progress/--no-progress", default=False, help="Progress bar on stderr.")
@JSON
def fp_query_dir(folder: str, index_dir: str, workers: int | None, progress: bool, as_json: bool) -> None:
    """Query every file under FOLDER: one JSON object per line with a "file" key.

    A file that cannot be fingerprinted gives a line with "error" and no matches."""
    from fingerprint.service import query_dir

    if not (Path(index_dir) / "fingerprints.sqlite").exists():
        raise InputError(f"index {index_dir}: no index here")
    with _errors():
        for name, result, err in query_dir(folder, index_dir, workers=workers, progress=progress):
            if result is None:
                obj: dict[str, Any] = {"file": name, "matches": [], "modality": None, "error": err}
                click.echo(f"rongxin: skipped {name}: {err}", err=True)
            else:
                obj = {"file": name, **result.as_dict()}
            if as_json:
                _dump(obj)
            else:
                best = obj["matches"][0] if obj["matches"] else None
                print(f"{name}\t{best['work_id'] if best else '-'}\t{best['score'] if best else ''}")


@fp.command("remove")
@click.argument("work_id")
@INDEX
def fp_remove(work_id: str, index_dir: str) -> None:
    """Remove WORK_ID from the index."""
    from fingerprint.index import open_index

    with _errors(), open_index(index_dir, create=False) as idx:
        idx.remove(work_id)
    print(f"removed {work_id}")


@fp.command("stats")
@INDEX
@JSON
def fp_stats(index_dir: str, as_json: bool) -> None:
    """Works per modality and the index's size on disk."""
    from fingerprint.index import open_index

    with _errors(), open_index(index_dir, create=False) as idx:
        counts = {m: idx.count(m) for m in ("image", "audio", "video", "text")}
    size = sum(p.stat().st_size for p in Path(index_dir).iterdir() if p.is_file())
    emit({"works": counts, "bytes": size}, as_json)


def register(group: click.Group) -> None:
    group.add_command(fp)
