"""Stack drift, detected and reported: what differs between what a stack holds and what it declares."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from dashboard.stacks.changesets import StackOperationFailed


def detect(cfn: Any, stack: str, *, sleep: Callable[[float], None], timeout: float = 300) -> dict[str, Any]:
    """Run drift detection on `stack` and wait for it; the report: status and every drifted resource with
    its property differences (path, expected, actual, kind)."""
    detection = cfn.detect_stack_drift(StackName=stack)["StackDriftDetectionId"]
    deadline = time.monotonic() + timeout
    while True:
        status = cfn.describe_stack_drift_detection_status(StackDriftDetectionId=detection)
        if status["DetectionStatus"] != "DETECTION_IN_PROGRESS":
            break
        if time.monotonic() > deadline:
            raise StackOperationFailed(f"Drift detection on {stack} still running after {timeout:.0f} s.")
        sleep(2)
    if status["DetectionStatus"] == "DETECTION_FAILED" and status.get("StackDriftStatus") != "DRIFTED":
        raise StackOperationFailed(
            f"Drift detection on {stack} failed: {status.get('DetectionStatusReason') or 'no reason given'}"
        )
    drifted = []
    token = None
    while True:
        page = cfn.describe_stack_resource_drifts(
            StackName=stack,
            StackResourceDriftStatusFilters=["MODIFIED", "DELETED"],
            **({"NextToken": token} if token else {}),
        )
        for drift in page.get("StackResourceDrifts") or []:
            drifted.append(
                {
                    "logical_id": drift["LogicalResourceId"],
                    "type": drift.get("ResourceType", ""),
                    "physical_id": drift.get("PhysicalResourceId", ""),
                    "status": drift["StackResourceDriftStatus"],
                    "differences": [
                        {
                            "path": d["PropertyPath"],
                            "expected": d.get("ExpectedValue"),
                            "actual": d.get("ActualValue"),
                            "kind": d["DifferenceType"],
                        }
                        for d in drift.get("PropertyDifferences") or []
                    ],
                }
            )
        token = page.get("NextToken")
        if not token:
            break
    return {
        "stack": stack,
        "status": status.get("StackDriftStatus", ""),
        "detection": status["DetectionStatus"],
        "drifted": drifted,
    }


def describe_report(report: dict[str, Any]) -> list[str]:
    """One line per drifted resource and per difference, for a step's log and failure message."""
    lines = []
    for resource in report["drifted"]:
        lines.append(f"{report['stack']}/{resource['logical_id']} ({resource['type']}) {resource['status']}")
        for d in resource["differences"]:
            lines.append(f"  {d['path']} {d['kind']}: expected {d['expected']!s}, actual {d['actual']!s}")
    return lines
