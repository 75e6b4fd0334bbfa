"""Local (Docker-free) bundling: wheels for the target architecture, code next to them, cached, verified."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from infra import FUNCTION_DIR
from infra.bundling import (
    CACHE_ROOT,
    RUNTIME_PROVIDED,
    BundlingError,
    _dependencies,
    _elf_machine,
    bundle_function,
    verify_bundle,
)
from infra.config import Architecture

EM_AARCH64, EM_X86_64 = 0xB7, 0x3E


@pytest.fixture(scope="module", params=["arm64", "x86_64"])
def bundle(request: pytest.FixtureRequest) -> tuple[Architecture, Path]:
    architecture: Architecture = request.param
    return architecture, bundle_function(architecture=architecture)


def test_bundle_holds_code_and_requirements(bundle: tuple[Architecture, Path]) -> None:
    _, path = bundle
    assert (path / "handler.py").is_file()
    assert (path / "archiver" / "settings.py").is_file()
    for package in ("fastavro", "aws_lambda_powertools", "cramjam", "tzdata"):
        assert (path / package).is_dir(), package


def test_fastavro_is_the_manylinux_build_for_the_target(bundle: tuple[Architecture, Path]) -> None:
    architecture, path = bundle
    readers = list((path / "fastavro").glob("_read.*.so"))
    assert len(readers) == 1
    triplet = "aarch64-linux-gnu" if architecture == "arm64" else "x86_64-linux-gnu"
    assert triplet in readers[0].name
    assert _elf_machine(readers[0]) == (EM_AARCH64 if architecture == "arm64" else EM_X86_64)
    assert any(path.glob("fastavro-*.dist-info")), "installed from a wheel"


def test_bundle_excludes_tests_caches_and_runtime_provided_packages(bundle: tuple[Architecture, Path]) -> None:
    _, path = bundle
    assert not list(path.rglob("__pycache__"))
    assert not list(path.rglob("*.pyc"))
    assert not (path / "tests").exists()
    for name in RUNTIME_PROVIDED:
        assert not (path / name).exists(), name


def test_bundle_is_cached_by_content(bundle: tuple[Architecture, Path]) -> None:
    architecture, path = bundle
    assert bundle_function(architecture=architecture) == path
    other: Architecture = "x86_64" if architecture == "arm64" else "arm64"
    assert bundle_function(architecture=other) != path


def test_code_change_makes_a_new_bundle_but_reuses_the_wheels(tmp_path: Path) -> None:
    source = tmp_path / "function"
    shutil.copytree(FUNCTION_DIR, source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    cache = tmp_path / "cache"
    cache.mkdir()
    # Seed the wheels from the project's cache, so the test needs no PyPI round trip (pip resolves online even when
    # its own cache has every wheel); what is under test is the code layer and the reuse of the wheels.
    wheels = _dependencies(architecture="x86_64", requirements=source / "requirements.txt", cache_root=CACHE_ROOT)
    (cache / wheels.name).symlink_to(wheels, target_is_directory=True)
    first = bundle_function(architecture="x86_64", source_dir=source, cache_root=cache)
    (source / "handler.py").write_text((source / "handler.py").read_text() + "\n# changed\n")
    (source / "tests").mkdir()
    (source / "tests" / "test_x.py").write_text("assert True\n")
    second = bundle_function(architecture="x86_64", source_dir=source, cache_root=cache)
    assert first != second
    assert (second / "handler.py").read_text().endswith("# changed\n")
    assert not (second / "tests").exists()
    assert list(cache.glob("deps-*")) == [cache / wheels.name], "requirements unchanged: the wheels are reused"
    assert not list(cache.glob(".staging-*")), "no half-built bundle left behind"


def test_verify_rejects_a_module_for_the_wrong_architecture(bundle: tuple[Architecture, Path], tmp_path: Path) -> None:
    architecture, path = bundle
    copy = tmp_path / "bundle"
    shutil.copytree(path, copy, symlinks=True)
    verify_bundle(copy, architecture=architecture)
    other: Architecture = "x86_64" if architecture == "arm64" else "arm64"
    with pytest.raises(BundlingError, match=f"not an {other} bundle"):
        verify_bundle(copy, architecture=other)


def test_verify_requires_fastavros_compiled_reader(bundle: tuple[Architecture, Path], tmp_path: Path) -> None:
    architecture, path = bundle
    copy = tmp_path / "bundle"
    shutil.copytree(path, copy, symlinks=True)
    for reader in (copy / "fastavro").glob("_read.*.so"):
        reader.unlink()
    with pytest.raises(BundlingError, match="fastavro's compiled reader"):
        verify_bundle(copy, architecture=architecture)


def test_installing_the_wheels_says_so_on_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The long step of a first synth (pip for the function's architecture) prints progress; a cached one is quiet.

    pip itself is replaced by a stand-in that succeeds without installing anything: what is under test is the
    progress output around it, and a real cold install needs a PyPI round trip.
    """
    import infra.bundling as bundling

    requirements = tmp_path / "requirements.txt"
    requirements.write_text("fastavro\n")
    monkeypatch.setattr("infra.bundling.subprocess.run", lambda *_a, **_k: subprocess.CompletedProcess([], 0, "", ""))
    bundling._dependencies(architecture="arm64", requirements=requirements, cache_root=tmp_path)
    err = capsys.readouterr().err
    assert "bundling: installing requirements.txt for arm64" in err
    assert "arm64 wheels ready in" in err
    bundling._dependencies(architecture="arm64", requirements=requirements, cache_root=tmp_path)
    assert capsys.readouterr().err == ""
