"""The installed package: one ``mgcosim`` namespace, no generic top-level names."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata


def python(code: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def test_only_the_mgcosim_namespace_is_importable(tmp_path):
    """From a folder of the user's own (with a ``networks.py`` beside it, as a user had),
    mgcosim's simulators import under ``mgcosim`` and the repository folders do not leak."""
    (tmp_path / "networks.py").write_text("USER = True\n")
    ok = python("import mgcosim.sim.grid_sim, networks; assert networks.USER", tmp_path)
    assert ok.returncode == 0, ok.stderr
    for name in ("sim", "controllers", "scenarios"):
        leaked = python(f"import {name}", tmp_path)
        assert leaked.returncode != 0 and "ModuleNotFoundError" in leaked.stderr, name


def test_version_is_the_installed_distributions():
    out = subprocess.run(
        [sys.executable, "-m", "mgcosim.sim.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0
    assert out.stdout.strip() == f"mgcosim {metadata.version('mgcosim')}"
