"""The pyarrow of the stream and compaction functions: a Lambda layer, so no other
function carries it.

Three sources, for the runtime Chalice picks (the local Python, ``python3.11``):

- **A layer built here** (``build``, the default): ``requirements-layer.txt`` installed
  with ``pip --platform`` for the runtime's glibc. It holds the very pyarrow the tests
  run (``requirements-dev.txt`` includes the same file) and nothing else, and its size
  is measured, not bounded. This is a deliberate departure from the issue's default:
  the managed layer brings pandas and numpy, and with pandas installed ``pa.array``
  imports it (``chalicelib.lake.parquet``), which the stream function's cold start
  would pay for; and its pyarrow is one this project has not tested.
- **The AWS SDK for pandas managed layer** (``managed``): ``managed_layer_arn`` reads
  ``managed_layers.json``, the layer table of ONE release of AWS SDK for pandas (3.4.0,
  ``source`` in the file), pinned because a published layer version never changes while
  the "latest" one does. That release's table is the newest this project could read in
  full; which pyarrow it bundles was not found in the sources read. Its unzipped size
  cannot be read offline either: the file records an upper bound with its source (see
  ``deploy.package``).
- **Any layer ARN** the user gives.

The glibc matters: ``python3.11`` runs on Amazon Linux 2 (glibc 2.26), ``python3.12`` and
later on Amazon Linux 2023 (glibc 2.34). pip takes ``--platform`` tags literally, so every
``manylinux_2_17`` .. ``manylinux_2_<runtime>`` tag is passed, as Chalice itself does for
the function packages. pyarrow 21 and later publish only ``manylinux_2_28`` wheels, whose
``libarrow.so`` needs ``GLIBC_2.28`` (``fcntl64``) and fails to load on ``python3.11``:
that is why the layer pins pyarrow 20.0.0, and why a pin with no compatible wheel fails
the build here instead of failing the first stream batch on AWS.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from chalicelib.settings import PROJECT_ROOT
from deploy.zips import file_entry, unzipped_size

LAYER_REQUIREMENTS = PROJECT_ROOT / "requirements-layer.txt"
BUILT_LAYER = "pyarrow-layer.zip"
LAYER_SUFFIX = "pyarrow"  # the deployed layer: ocg-<project>-<stage>-pyarrow
# Chalice builds for the local Python and, unless a function says otherwise, x86_64.
ARCHITECTURE = "x86_64"
MANAGED_LAYERS = Path(__file__).with_name("managed_layers.json")

# The glibc of each Lambda Python runtime (AWS Lambda runtimes: python3.11 is on Amazon
# Linux 2, python3.12 and later on Amazon Linux 2023).
RUNTIME_GLIBC_MINOR = {"3.11": 26, "3.12": 34, "3.13": 34, "3.14": 34}
OLDEST_MANYLINUX_MINOR = 17  # manylinux2014, the oldest tag pip resolves by name here
MACHINES = {"x86_64": "x86_64", "arm64": "aarch64"}

# What Lambda never loads: bytecode (Python compiles it again on import), test suites,
# pyarrow's C++ headers and sources (for building extensions against it), Cython sources.
_PRUNED_DIRECTORIES = {"__pycache__", "tests"}
_PRUNED_PATHS = {"pyarrow/include", "pyarrow/src"}
_PRUNED_SUFFIXES = {".pyc", ".pyx", ".pxd", ".pxi"}
# Every entry gets this time (the earliest a zip can hold), so rebuilds are identical.


def runtime_python_version() -> str:
    """The Lambda runtime's Python: Chalice deploys with the local one (``3.11``)."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


class LayerError(Exception):
    """No layer for what was asked: the message says what to do instead."""


@cache
def _managed_layers() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(MANAGED_LAYERS.read_text())
    return data


def managed_layer_release() -> str:
    """The AWS SDK for pandas release whose layers ``managed_layer_arn`` names."""
    release: str = _managed_layers()["release"]
    return release


def managed_layer_size_bound() -> int:
    """An upper bound on the managed layer's unzipped bytes (its source is in the file)."""
    bound: int = _managed_layers()["unzipped_bytes_bound"]
    return bound


def managed_layer_arn(
    region: str, python_version: str = "3.11", architecture: str = "x86_64"
) -> str:
    """The AWS SDK for pandas layer of the pinned release for this region and runtime."""
    layers = _managed_layers()["layers"]
    arn: str | None = layers.get(python_version, {}).get(architecture, {}).get(region)
    if arn is None:
        raise LayerError(
            f"AWS SDK for pandas {managed_layer_release()} has no layer for python"
            f"{python_version} ({architecture}) in {region} in {MANAGED_LAYERS.name}: "
            "pass a pyarrow layer ARN explicitly (for example one made from "
            "`deploy.layer.build_layer`)"
        )
    return arn


def pip_platforms(python_version: str, architecture: str) -> list[str]:
    """The wheel platform tags the Lambda runtime can load, for ``pip --platform``."""
    if python_version not in RUNTIME_GLIBC_MINOR:
        raise LayerError(
            f"no Lambda runtime glibc recorded for python{python_version} "
            f"(known: {', '.join(RUNTIME_GLIBC_MINOR)})"
        )
    if architecture not in MACHINES:
        raise LayerError(f"unknown Lambda architecture {architecture!r} (x86_64 or arm64)")
    machine = MACHINES[architecture]
    glibc_minor = RUNTIME_GLIBC_MINOR[python_version]
    tags = [
        f"manylinux_2_{minor}_{machine}" for minor in range(OLDEST_MANYLINUX_MINOR, glibc_minor + 1)
    ]
    return [*tags, f"manylinux2014_{machine}"]


def build_layer(
    zip_path: Path,
    *,
    python_version: str = "3.11",
    architecture: str = "x86_64",
    requirements: Path = LAYER_REQUIREMENTS,
) -> Path:
    """Build the pyarrow layer zip (``python/…``, as Lambda layers are laid out) at
    ``zip_path``: wheels only, for the runtime's platform, pruned, byte-for-byte the
    same on every build of the same requirements with the same zlib."""
    platforms = pip_platforms(python_version, architecture)
    with tempfile.TemporaryDirectory(prefix="ocg-layer-") as work:
        target = Path(work) / "python"
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--only-binary=:all:",
            "--implementation",
            "cp",
            "--python-version",
            python_version,
            *(argument for tag in platforms for argument in ("--platform", tag)),
            "--target",
            str(target),
            "-r",
            str(requirements),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise LayerError(
                f"pip found no wheels of {requirements.name} that python{python_version} "
                f"({architecture}, glibc 2.{RUNTIME_GLIBC_MINOR[python_version]}) can load:\n"
                f"{result.stderr.strip()}"
            )
        _prune(target)
        _write_zip(Path(work), zip_path)
    return zip_path


def _prune(root: Path) -> None:
    for path in sorted(root.rglob("*"), reverse=True):  # children before their parents
        if path.is_dir() and (
            path.name in _PRUNED_DIRECTORIES or path.relative_to(root).as_posix() in _PRUNED_PATHS
        ):
            shutil.rmtree(path)
        elif path.is_file() and path.suffix in _PRUNED_SUFFIXES:
            path.unlink()


def _write_zip(root: Path, zip_path: Path) -> None:
    """Entries sorted by name, with one fixed time and normalised modes: nothing of the
    machine or the moment of the build reaches the zip."""
    files = sorted((path for path in root.rglob("*") if path.is_file()), key=lambda p: p.as_posix())
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            name = path.relative_to(root).as_posix()
            entry = file_entry(name, executable=bool(path.stat().st_mode & 0o111))
            archive.writestr(entry, path.read_bytes())


MIB = 1024 * 1024

# The pyarrow layer: built here, the AWS SDK for pandas managed layer, or an ARN.
BUILD, MANAGED = "build", "managed"


@dataclass(frozen=True)
class Layer:
    """One layer of the stream and compaction functions: what it is, and its unzipped
    bytes."""

    description: str
    unzipped_bytes: int


def mib(size: int) -> str:
    """Bytes in MiB, the unit of AWS's "MB" limits, so figures and limits compare."""
    return f"{size / MIB:.1f} MiB"


@dataclass(frozen=True)
class StreamLayer:
    """The pyarrow layer of the stream and compaction functions: as the template names
    it (an ARN, or the built zip beside the template), and as the size check counts it."""

    reference: str | Path
    counted: Layer | None


def stream_layer(choice: str, region: str, out_dir: Path) -> StreamLayer:
    """``build`` (into ``out_dir``, measured), ``managed`` (at its recorded bound) or a
    layer ARN (not counted)."""
    if choice == MANAGED:
        arn = managed_layer_arn(region, runtime_python_version(), ARCHITECTURE)
        bound = managed_layer_size_bound()
        description = (
            f"AWS SDK for pandas {managed_layer_release()} managed layer {arn}: "
            f"counted at {mib(bound)}, a recorded bound (not measurable offline)"
        )
        return StreamLayer(arn, Layer(description, bound))
    if choice != BUILD:
        return StreamLayer(choice, None)
    zip_path = build_layer(
        out_dir / BUILT_LAYER, python_version=runtime_python_version(), architecture=ARCHITECTURE
    )
    size = unzipped_size(zip_path)
    description = f"built {zip_path}: {mib(size)} unzipped, {mib(zip_path.stat().st_size)} zipped"
    return StreamLayer(Path(BUILT_LAYER), Layer(description, size))
