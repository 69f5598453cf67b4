"""The user docs build with ``mkdocs build --strict`` (every link, every generated
section, every documented API), as CI builds them."""

import importlib.util
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None,
                    reason="the docs extra is not installed (scripts/setup_tests.sh installs it)")
def test_the_docs_build_strictly(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    page = (tmp_path / "site" / "configuration" / "index.html").read_text()
    assert "ICRM_MODEL_NAME" in page and "ICRM_NUM_SHOTS" in page  # generated from ICRMConfig
    assert "engine_unavailable" in (tmp_path / "site" / "errors" / "index.html").read_text()
