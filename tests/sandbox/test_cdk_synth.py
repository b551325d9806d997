"""The templates the sandbox deploys are exactly what Vela's CDK app synthesizes (infra/sandbox/cdk).

Runs `npm ci` and the app's synth into a temporary directory, then compares with the committed
templates. Skipped only where Node is absent; in CI (CI or VELAOPS_REQUIRE_NODE set) that fails instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

CDK_APP = Path(__file__).resolve().parents[2] / "infra" / "sandbox" / "cdk"
COMMITTED = CDK_APP / "synth"


def _node_or_skip() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node and npm:
        return node
    if os.environ.get("CI") or os.environ.get("VELAOPS_REQUIRE_NODE"):
        pytest.fail("CI must synthesize the CDK app: node and npm are required")
    pytest.skip("node/npm are not installed: the committed templates cannot be re-synthesized here")


@pytest.mark.timeout(600)
def test_committed_templates_equal_a_fresh_synth(tmp_path):
    node = _node_or_skip()
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=CDK_APP, check=True, capture_output=True
    )
    subprocess.run([node, "synth.js", str(tmp_path)], cwd=CDK_APP, check=True, capture_output=True)
    fresh = sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*.template.json"))
    committed = sorted(path.relative_to(COMMITTED) for path in COMMITTED.rglob("*.template.json"))
    assert fresh == committed
    assert len(fresh) == 6  # r0, r1, r2 × DatabaseStack, ApiStack
    for relative in fresh:
        assert json.loads((tmp_path / relative).read_text()) == json.loads((COMMITTED / relative).read_text()), (
            f"{relative} differs from a fresh synth: run `make cdk-synth` and commit the result"
        )
