"""`dvc exp run` must never move the champion: DVC marks every stage it runs inside an
experiment, and the gate reads that mark. This runs real DVC in a throw-away repository."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

DVC = Path(sys.executable).with_name("dvc")
STAGE = ("python -c \"from leadscore.lifecycle.promotion import in_experiment; "
         "open('seen.txt', 'w').write(str(in_experiment()))\"")


def run(cmd: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
           "DVC_NO_ANALYTICS": "1"}
    for var in ("DVC_EXP_NAME", "DVC_EXP_BASELINE_REV"):
        env.pop(var, None)
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_gate_sees_dvc_exp_run_but_not_dvc_repro(tmp_path):
    (tmp_path / "params.yaml").write_text("x: 1\n")
    (tmp_path / "dvc.yaml").write_text(
        f"stages:\n  gate:\n    cmd: {STAGE}\n    params: [x]\n    outs:\n      - seen.txt:\n"
        "          cache: false\n")
    run(["git", "init", "-q"], tmp_path)
    run([str(DVC), "init", "-q"], tmp_path)
    run([str(DVC), "repro", "-q"], tmp_path)
    assert (tmp_path / "seen.txt").read_text() == "False"
    run(["git", "add", "-A"], tmp_path)
    run(["git", "commit", "-qm", "baseline"], tmp_path)
    run([str(DVC), "exp", "run", "-S", "x=2"], tmp_path)
    assert (tmp_path / "seen.txt").read_text() == "True"
