"""``harcore data``: the datasets, their official sources, verified downloads and checks of local copies.
Registered in ``harcore.cli``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(no_args_is_help=True, help="Datasets: list them, download an official archive, verify a copy.")


def _known(name: str) -> str:
    from . import DATASETS

    key = name.strip().lower()
    if key not in DATASETS:
        raise typer.BadParameter(f"{name!r} is not a dataset; known: {', '.join(DATASETS)}", param_hint="NAME")
    return key


def _home_page(name: str) -> str:
    """Where a dataset without a downloadable archive is published (its loader module's ``URL``), or ``-``."""
    import sys

    from . import _loader

    return getattr(sys.modules[_loader(name).__module__], "URL", "-")


@app.command("list")
def list_datasets() -> None:
    """Every dataset harcore reads, its official source, how a download is verified, and the cached copy."""
    from . import DATASETS, SOURCES, cache_dir
    from .remote import has_known_files, known_files

    for name in DATASETS:
        src = SOURCES.get(name)
        if name == "default":
            how, url = "built in (ships with harcore)", "-"
        elif name == "motionsense":
            how, url = "per file: sha256 (datasets.motionsense.download_files)", "a base URL you give"
        elif src is None:
            how, url = "no download: bring a local copy", _home_page(name)
        else:
            url = src.url
            how = (f"sha256 {src.sha256[:12]}…" if src.sha256 else
                   f"per file: {len(known_files(name))} data files' git blob SHA-1" if has_known_files(name) else
                   "needs --sha256 you verified")
        cached = cache_dir() / name
        have = "cached" if cached.exists() and any(cached.iterdir()) else "not cached"
        typer.echo(f"{name:13s} {have:10s} {how:44s} {url}")


@app.command("download")
def download(
    name: str = typer.Argument(..., help="dataset name (see `harcore data list`)"),
    sha256: Optional[str] = typer.Option(None, "--sha256", help="the archive's SHA-256, checked before it is kept"),
    dest: Optional[Path] = typer.Option(None, "--dest", help="folder to keep it in (default: the cache, $HARCORE_DATA)"),
) -> None:
    """Fetch a dataset's official archive; it is kept only if it checks out."""
    from . import DataError
    from .remote import download as fetch

    key = _known(name)
    try:
        path = fetch(key, dest, sha256=sha256)
    except DataError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{key}: {path}")


@app.command("verify")
def verify(
    name: str = typer.Argument(..., help="dataset name with known per-file hashes: uci-har, hapt, daphnet, wisdm"),
    root: Path = typer.Argument(..., help="the copy: a folder or an archive (.zip, .tar.*)"),
    partial: bool = typer.Option(False, "--partial", help="check only the data files present (a partial copy)"),
) -> None:
    """Check a local copy file by file against the data files' known git blob SHA-1 (exit 1 on a mismatch)."""
    from . import DataError
    from .remote import verify_copy

    key = _known(name)
    try:
        checked = verify_copy(key, root, require_all=not partial)
    except DataError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{key}: {len(checked)} data files match ({root})")
