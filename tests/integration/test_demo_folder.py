"""The demo's folder: keys made once and kept, private files, and a configuration file the
ordinary commands read back as exactly the settings the demo runs with."""

from __future__ import annotations

import stat
from dataclasses import replace
from pathlib import Path

import pytest

from courtois.config import load_settings
from courtois.demo.folder import DemoFolder
from courtois.demo.seed import demo_settings
from courtois.domain.errors import InvalidInput
from courtois.policy.config import load_policy


def test_the_configuration_file_reads_back_as_the_demo_settings(tmp_path: Path) -> None:
    folder = DemoFolder(tmp_path / "demo")
    keys = folder.keys()
    policy = load_policy({"profile": "strict-eu", "sender_daily_cap": 40})
    settings = demo_settings(folder, keys, "http://127.0.0.1:8123", "smtp://127.0.0.1:2525", policy)
    settings = replace(settings, platform_postal_address='1 "Quoted" St\\Backslash, Été')
    path = folder.write_config(settings)
    assert load_settings(path, environ={}) == settings
    for private in (path, folder.dkim_key_file):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600


def test_keys_are_made_once_and_kept(tmp_path: Path) -> None:
    folder = DemoFolder(tmp_path / "demo")
    keys = folder.keys()
    assert len(keys.secret_key) >= 32
    assert keys.api_key != keys.secret_key
    settings = demo_settings(
        folder, keys, "http://127.0.0.1:1", "smtp://127.0.0.1:2", load_policy({})
    )
    folder.write_config(settings)
    dkim = folder.dkim_key_file.read_bytes()
    assert DemoFolder(tmp_path / "demo").keys() == keys
    assert DemoFolder(tmp_path / "demo").ensure_dkim_key().read_bytes() == dkim
    assert DemoFolder(tmp_path / "other").keys() != keys


def test_a_database_without_its_key_is_refused(tmp_path: Path) -> None:
    folder = DemoFolder(tmp_path / "demo")
    folder.path.mkdir(parents=True)
    folder.database_file.write_bytes(b"")
    with pytest.raises(InvalidInput, match="not the key"):
        folder.keys()
