"""Bundle the Lambda asset locally, without Docker.

CDK's default Python bundling runs pip inside a Docker image; many CI runners (and this project's dev machines)
have no Docker engine. Instead pip installs the function's requirements as wheels built for the *target*
architecture (``--platform manylinux..._<arch> --only-binary=:all:``), then the function code is copied next to
them. ``verify_bundle`` proves every compiled module is for that architecture, and, when the host has the same
architecture, imports every compiled module from the bundle.

Bundles are cached under ``.local/bundles/`` (``$LOCAL_STATE_DIR/bundles`` when set): dependencies by
(architecture, requirements), and the full bundle by (dependencies, code). Builds go to a temporary directory
first and are renamed into place, so a half-written bundle is never reused and parallel builds do not collide.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from infra import FUNCTION_DIR, PROJECT_ROOT
from infra.config import Architecture

# Bump when the bundle layout changes, to invalidate every cache entry.
BUNDLE_FORMAT = "6"
# Under the local tooling's state directory (LOCAL_STATE_DIR, default .local/), like its venvs and binaries.
CACHE_ROOT = Path(os.environ.get("LOCAL_STATE_DIR") or PROJECT_ROOT / ".local") / "bundles"
LAMBDA_PYTHON_VERSION = "3.13"
STALE_AFTER_SECONDS = 3600

# The python3.13 runtime runs on Amazon Linux 2023 (glibc 2.34). pip does not widen an explicit --platform to
# older manylinux tags, so list the glibc baselines wheels are published for, newest first.
_MANYLINUX = ("manylinux_2_34", "manylinux_2_28", "manylinux2014")
_ELF_MACHINE = {"arm64": 0xB7, "x86_64": 0x3E}  # e_machine: EM_AARCH64, EM_X86_64
_TRIPLET = {"arm64": "aarch64-linux-gnu", "x86_64": "x86_64-linux-gnu"}

# The Lambda runtime ships boto3 and its dependencies. aws-xray-sdk pulls botocore in; leaving that copy out keeps
# the runtime's matching boto3/botocore pair (and saves ~70 MB of the 250 MB unzipped limit).
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "urllib3", "dateutil", "python_dateutil", "six", "jmespath")

# Never part of the asset: tests, caches and packaging leftovers.
EXCLUDED_NAMES = {"tests", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", ".venv"}
EXCLUDED_SUFFIXES = (".pyc", ".pyo")


class BundlingError(Exception):
    """The asset could not be built, or it is not built for the target architecture."""


def bundle_function(
    *,
    architecture: Architecture,
    source_dir: Path = FUNCTION_DIR,
    requirements: Path | None = None,
    include: Sequence[tuple[Path, str]] = (),
    name: str = "archiver",
    cache_root: Path = CACHE_ROOT,
) -> Path:
    """A directory holding the function code and its requirements for ``architecture``; built once, then cached.

    ``requirements`` defaults to ``source_dir/requirements.txt``; ``include`` adds code trees from elsewhere in the
    repository under a name in the bundle (the maintenance functions take the archiver package and ``archive_ops/``), so
    the deployed code is the very code the CLI runs.
    """
    requirements = requirements or source_dir / "requirements.txt"
    deps = _dependencies(architecture=architecture, requirements=requirements, cache_root=cache_root)
    trees = [(source_dir, ""), *include]
    code_hash = hashlib.sha256("".join(_hash_tree(tree) + destination for tree, destination in trees).encode())
    target = cache_root / f"{name}-{architecture}-{deps.name.rsplit('-', 1)[-1][:12]}-{code_hash.hexdigest()[:16]}"
    if not target.is_dir():
        with _staging(cache_root) as staging:
            shutil.copytree(deps, staging, dirs_exist_ok=True, symlinks=True)
            for tree, destination in trees:
                for item in _code_files(tree):
                    copied = staging / destination / item.relative_to(tree)
                    copied.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(item, copied)
            verify_bundle(staging, architecture=architecture)
            _publish(staging, target)
        _prune(cache_root, keep=target, pattern=f"{name}-{architecture}-*")
    return target


def verify_bundle(bundle: Path, *, architecture: Architecture) -> None:
    """Raise ``BundlingError`` unless every compiled module (and fastavro's wheel) is built for ``architecture``."""
    compiled = sorted(bundle.rglob("*.so"))
    fastavro = [path for path in compiled if path.parent.name == "fastavro" and path.name.startswith("_read.")]
    if not fastavro:
        raise BundlingError(f"{bundle}: fastavro's compiled reader (fastavro/_read.*.so) is missing")
    problems = []
    for path in compiled:
        machine = _elf_machine(path)
        if machine != _ELF_MACHINE[architecture]:
            problems.append(f"{path.relative_to(bundle)} is for ELF machine {machine:#x}, not {architecture}")
        elif "cpython-" in path.name and _TRIPLET[architecture] not in path.name:
            problems.append(f"{path.relative_to(bundle)} is not tagged {_TRIPLET[architecture]}")
    wheel_machine = "aarch64" if architecture == "arm64" else "x86_64"
    for wheel in bundle.glob("fastavro-*.dist-info/WHEEL"):
        tags = [line.split(":", 1)[1].strip() for line in wheel.read_text().splitlines() if line.startswith("Tag:")]
        if not any("manylinux" in tag and tag.endswith(wheel_machine) for tag in tags):
            problems.append(f"fastavro was installed from a wheel tagged {tags}, not a manylinux {wheel_machine} wheel")
    if problems:
        raise BundlingError(f"{bundle} is not an {architecture} bundle:\n  " + "\n  ".join(problems))
    if _host_architecture() == architecture and sys.version_info[:2] == (3, 13):
        _import_check(bundle)


def _dependencies(*, architecture: Architecture, requirements: Path, cache_root: Path) -> Path:
    digest = hashlib.sha256(f"{BUNDLE_FORMAT}\n{architecture}\n".encode() + requirements.read_bytes()).hexdigest()
    target = cache_root / f"deps-{architecture}-{digest[:16]}"
    if target.is_dir():
        return target
    started = time.monotonic()
    # Progress on stderr (the CDK CLI shows it): the first synth per architecture waits here for pip.
    print(f"bundling: installing {requirements.name} for {architecture} into {target.name} ...", file=sys.stderr)
    with _staging(cache_root) as staging:
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
        for tag in _MANYLINUX:
            command += ["--platform", f"{tag}_{'aarch64' if architecture == 'arm64' else 'x86_64'}"]
        command += ["--only-binary=:all:", "--implementation", "cp", "--python-version", LAMBDA_PYTHON_VERSION]
        command += ["--target", str(staging), "--requirement", str(requirements)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 (fixed argv)
        if result.returncode != 0:
            raise BundlingError(f"pip could not install {requirements} for {architecture}:\n{result.stderr[-4000:]}")
        for name in (*RUNTIME_PROVIDED, "bin"):
            for path in (*staging.glob(name), *staging.glob(f"{name}.py"), *staging.glob(f"{name}-*.dist-info")):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        _publish(staging, target)
    print(
        f"bundling: {architecture} wheels ready in {time.monotonic() - started:.0f} s (cached for later synths)",
        file=sys.stderr,
    )
    return target


def _code_files(source_dir: Path) -> Iterator[Path]:
    for path in sorted(source_dir.rglob("*")):
        relative = path.relative_to(source_dir)
        if path.is_file() and not (set(relative.parts) & EXCLUDED_NAMES) and not path.name.endswith(EXCLUDED_SUFFIXES):
            yield path


def _hash_tree(source_dir: Path) -> str:
    digest = hashlib.sha256(BUNDLE_FORMAT.encode())
    for path in _code_files(source_dir):
        digest.update(str(path.relative_to(source_dir)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _publish(staging: Path, target: Path) -> None:
    """Move a finished build into place; if another process won the race, keep theirs."""
    try:
        staging.rename(target)
    except OSError:
        if not target.is_dir():
            raise


class _StagingDir:
    def __init__(self, cache_root: Path) -> None:
        cache_root.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=".staging-", dir=cache_root))

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)  # gone already if it was published


def _staging(cache_root: Path) -> _StagingDir:
    return _StagingDir(cache_root)


def _prune(cache_root: Path, *, keep: Path, pattern: str) -> None:
    """Drop bundles superseded over an hour ago (a code change makes a new one each time)."""
    cutoff = time.time() - STALE_AFTER_SECONDS
    for path in cache_root.glob(pattern):
        if path != keep and path.is_dir() and path.stat().st_mtime < cutoff:
            shutil.rmtree(path, ignore_errors=True)


def _elf_machine(path: Path) -> int:
    with path.open("rb") as file:
        header = file.read(20)
    if header[:4] != b"\x7fELF":
        raise BundlingError(f"{path} is not an ELF shared object")
    return int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")


def _host_architecture() -> str:
    machine = platform.machine().lower()
    return {"aarch64": "arm64", "arm64": "arm64", "x86_64": "x86_64", "amd64": "x86_64"}.get(machine, machine)


def _import_check(bundle: Path) -> None:
    """Import every compiled module from the bundle itself (not the venv), as the Lambda runtime would."""
    modules = sorted(
        ".".join((*path.relative_to(bundle).parent.parts, path.name.split(".", 1)[0])) for path in bundle.rglob("*.so")
    )
    script = (
        "import importlib, sys; root = sys.argv[1]; sys.path.insert(0, root);"
        "loaded = [importlib.import_module(name) for name in sys.argv[2:]];"
        "import archiver.settings;"
        "bad = [m.__name__ for m in loaded if not (m.__file__ or '').startswith(root)];"
        "sys.exit(f'imported from outside the bundle: {bad}' if bad else 0)"
    )
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(  # noqa: S603 (fixed argv)
        [sys.executable, "-I", "-B", "-c", script, str(bundle), *modules],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if result.returncode != 0:
        raise BundlingError(f"the bundle at {bundle} does not import: {result.stderr.strip() or result.stdout.strip()}")
