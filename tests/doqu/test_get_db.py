"""doqu.get_db: finding backends by import path and by ``db_backends`` entry point."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

import doqu
from doqu import BackendNotFound, ImproperlyConfigured, get_db
from tests.doqu import memory_backend

BACKEND = "tests.doqu.memory_backend"


@pytest.fixture
def name():
    value = f"test-{uuid.uuid4().hex}"
    yield value
    memory_backend.drop_database(value)


def test_by_dotted_path_passes_remaining_settings(name: str) -> None:
    db = get_db({"backend": BACKEND, "name": name})
    assert isinstance(db, memory_backend.StorageAdapter)
    assert db.name == name and db.connected


def test_overrides_win_and_settings_are_not_modified(name: str) -> None:
    settings = {"backend": BACKEND, "name": "ignored"}
    db = get_db(settings, name=name)
    assert db.name == name
    assert settings == {"backend": BACKEND, "name": "ignored"}
    assert get_db(backend=BACKEND, name=name).name == name


def test_backend_given_as_module_or_class(name: str) -> None:
    assert isinstance(get_db(backend=memory_backend, name=name), memory_backend.StorageAdapter)
    db = get_db(backend=memory_backend.StorageAdapter, name=name)
    assert isinstance(db, memory_backend.StorageAdapter)


def test_unknown_setting_reaches_the_adapter() -> None:
    with pytest.raises(TypeError, match="colour"):
        get_db(backend=BACKEND, colour="red")


def test_missing_backend_key_lists_installed_backends() -> None:
    with pytest.raises(ImproperlyConfigured) as info:
        get_db({"host": "x"})
    text = str(info.value)
    assert "'backend'" in text
    assert "doqu_tyrant (doqu_tyrant)" in text and "tokyo_tyrant (doqu_tyrant)" in text
    assert isinstance(info.value, ValueError)
    with pytest.raises(ImproperlyConfigured):
        get_db()


def test_unknown_backend_names_it_and_lists_installed_backends() -> None:
    with pytest.raises(BackendNotFound) as info:
        get_db(backend="no_such_backend.anywhere")
    text = str(info.value)
    assert "'no_such_backend.anywhere'" in text
    assert "installed backends:" in text and "tokyo_tyrant" in text
    assert isinstance(info.value, ImproperlyConfigured)


def test_module_without_a_storage_adapter_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match="no StorageAdapter"):
        get_db(backend="json")
    with pytest.raises(ImproperlyConfigured, match="no StorageAdapter"):
        get_db(backend=dict)


def test_import_errors_inside_a_backend_propagate(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "broken_backend_pkg.py").write_text("import not_installed_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as info:
        get_db(backend="broken_backend_pkg")
    assert info.value.name == "not_installed_dependency_xyz"
    sys.modules.pop("broken_backend_pkg", None)


def test_installed_entry_points_are_listed() -> None:
    backends = doqu.available_backends()
    assert backends["doqu_tyrant"] == "doqu_tyrant"
    assert backends["tokyo_tyrant"] == "doqu_tyrant"


def test_backend_found_by_entry_point_name(tmp_path: Path, monkeypatch, name: str) -> None:
    dist = tmp_path / "doqu_memtest-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: doqu-memtest\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[db_backends]\nmemtest = {BACKEND}\nmemtest_class = {BACKEND}:StorageAdapter\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert doqu.available_backends()["memtest"] == BACKEND
    db = get_db(backend="memtest", name=name)
    assert isinstance(db, memory_backend.StorageAdapter) and db.name == name
    db = get_db(backend="memtest_class", name=name)
    assert isinstance(db, memory_backend.StorageAdapter)
    with pytest.raises(BackendNotFound, match=r"memtest \(tests.doqu.memory_backend\)"):
        get_db(backend="memtest_typo")
