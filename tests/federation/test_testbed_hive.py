"""Every corpus operation through Hive Gateway, against the hand-reviewed expected answers.

`REELGRAPH_UPDATE_EXPECTED=1` rewrites `expected/<name>.json` from Hive Gateway's answers
(except for `hive-differs` operations, whose expected file is written by hand): review the
diff before committing it.
"""

from __future__ import annotations

import json
import os

import httpx
import pytest

from .conftest import Gateway
from .corpus import FEATURES, Operation, compare, execute, load_operations, summarize

OPERATIONS = load_operations()
UPDATE = os.environ.get("REELGRAPH_UPDATE_EXPECTED") == "1"


def test_corpus_is_large_and_covers_every_feature() -> None:
    assert len(OPERATIONS) >= 120
    covered = {f for op in OPERATIONS for f in op.features}
    assert covered == FEATURES, f"features without an operation: {sorted(FEATURES - covered)}"
    assert sum(op.is_mutation for op in OPERATIONS) >= 8
    assert sum("invalid" in op.features for op in OPERATIONS) >= 20


def test_every_operation_has_an_expected_answer() -> None:
    missing = [op.name for op in OPERATIONS if not op.expected_path.exists()]
    assert UPDATE or not missing, f"no expected/<name>.json for {missing}"
    names = {op.name for op in OPERATIONS}
    stale = [p.stem for p in OPERATIONS[0].expected_path.parent.glob("*.json")]
    assert not set(stale) - names, f"expected answers without an operation: {set(stale) - names}"


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.name for op in OPERATIONS])
def test_hive_gateway_answers_as_expected(
    operation: Operation, hive_gateway: Gateway, http: httpx.Client
) -> None:
    hive_gateway.reset()
    answer = execute(http, hive_gateway.url, operation)
    if UPDATE and not operation.hive_differs:
        operation.expected_path.write_text(json.dumps(summarize(answer), indent=2) + "\n")
        return
    expected = operation.expected()
    difference = compare(answer, expected, error_count=True)
    if operation.hive_differs:
        assert difference is not None, (
            f"Hive Gateway now answers {operation.name} correctly: drop its hive-differs line"
        )
    else:
        assert difference is None, f"{difference}\nanswer: {json.dumps(answer)[:2000]}"
