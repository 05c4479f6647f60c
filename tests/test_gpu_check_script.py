"""benchmarks/gpu_check.sh skips cleanly (exit 0, says why) where CUDA is absent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present: the script would run the full GPU check")
def test_gpu_check_skips_without_cuda(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(
        ["bash", str(SCRIPT), str(out)], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "no CUDA device" in proc.stdout and "skipped" in proc.stdout
    assert not out.exists()  # nothing ran, nothing written
