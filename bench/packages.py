"""Package sizes as `sam build` leaves them in .aws-sam/build, zipped as `sam deploy` would.

Rebuilds (`make build`) when the build is missing or older than the sources it comes from,
so the figures describe the code being measured; when the build cannot run, the sizes
are null and the reason is recorded.
"""

from __future__ import annotations

import io
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any

SOURCES = ("template.yaml", "layers/common", "functions")


def _newest_source(root: Path) -> float:
    newest = 0.0
    for name in SOURCES:
        path = root / name
        files = (
            [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        )
        newest = max([newest, *(p.stat().st_mtime for p in files)])
    return newest


def _build(root: Path) -> str | None:
    """Run `make build`; the error text when it fails."""
    try:
        done = subprocess.run(["make", "build"], cwd=root, capture_output=True, text=True, timeout=900, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"make build could not run: {exc}"
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return f"make build failed ({done.returncode}): {' | '.join(tail)}"
    return None


def _sizes(directory: Path) -> dict[str, int]:
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(directory).as_posix())
    return {"zipped": len(buffer.getvalue()), "unzipped": sum(p.stat().st_size for p in files), "files": len(files)}


def measure(root: Path, *, allow_build: bool) -> dict[str, Any]:
    build_dir = root / ".aws-sam" / "build"
    marker = build_dir / "template.yaml"
    result: dict[str, Any] = {"build_dir": ".aws-sam/build", "rebuilt": False, "error": None}
    stale = not marker.exists() or marker.stat().st_mtime < _newest_source(root)
    if stale and allow_build:
        started = time.perf_counter()
        result["error"] = _build(root)
        result["rebuilt"] = result["error"] is None
        result["build_seconds"] = round(time.perf_counter() - started, 1)
        stale = result["error"] is not None
    result["stale"] = stale
    if not marker.exists():
        result.update(layer=None, functions=None)
        result["error"] = result["error"] or "no .aws-sam/build (run with the build allowed, or `make build`)"
        return result
    layers, functions = {}, {}
    for directory in sorted(p for p in build_dir.iterdir() if p.is_dir()):
        target = layers if (directory / "python").is_dir() else functions
        target[directory.name] = _sizes(directory)
    result["layer"] = layers
    result["functions"] = functions
    result["pyc_in_layer"] = any(build_dir.rglob("*.pyc"))
    return result
