"""Creators' earnings, revenue reports, admin refunds and the ledger audit over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.billing.conftest import START, Stack, User
from tests.support.processes import error_codes

EARNINGS = """{ earnings { balance { amount currency } totalEarned { amount }
  byVideo(first: 10) { video { id } earned { amount } refunded { amount } minutes } } }"""
REPORT = """
query R($p: ReportPeriod!, $f: Date!, $t: Date!, $c: ID) {
  revenueReport(period: $p, from: $f, to: $t, creatorId: $c) {
    start end gross { amount } creatorEarnings { amount } platformRevenue { amount }
    refunded { amount } minutes } }
"""
REFUND = """
mutation F($t: RefundTarget!, $id: ID!, $r: String!) { refund(target: $t, id: $id, reason: $r) {
  id target targetId amount { amount currency } reason } }
"""
CHARGES = """{ wallet { transactions(first: 100) { edges { node { kind referenceId amount { amount } } } } } }"""


async def _watch(stack: Stack, viewer: User, video: str, times: int) -> None:
    """Each session charges its first minute at once: `times` sessions, `times` minutes."""
    for _ in range(times):
        body = await stack.gql.execute(START, {"v": video}, token=viewer.token)
        assert "errors" not in body, body


async def _charge_ids(stack: Stack, viewer: User) -> list[str]:
    body = await stack.gql.execute(CHARGES, token=viewer.token)
    return [
        e["node"]["referenceId"]
        for e in body["data"]["wallet"]["transactions"]["edges"]
        if e["node"]["kind"] == "CHARGE"
    ]


def _window() -> dict[str, str]:
    # Charges are dated in UTC; a three-day window is safe across midnight.
    today = datetime.now(UTC).date()
    return {"f": str(today - timedelta(days=1)), "t": str(today + timedelta(days=1))}


def _totals(rows: list[dict[str, Any]]) -> dict[str, int]:
    keys = ("gross", "creatorEarnings", "platformRevenue", "refunded")
    totals = {k: sum(int(r[k]["amount"]) for r in rows) for k in keys}
    totals["minutes"] = sum(r["minutes"] for r in rows)
    return totals


async def _report(stack: Stack, token: str, **variables: Any) -> dict[str, Any]:
    return await stack.gql.execute(REPORT, {"p": "DAY", **_window(), **variables}, token=token)


async def test_earnings_reports_and_refunds_add_up(stack: Stack) -> None:
    creator, viewer = await stack.register(), await stack.register()
    admin = await stack.admin()
    before = _totals((await _report(stack, admin.token))["data"]["revenueReport"])
    a = await stack.video(creator, price=10)
    b = await stack.video(creator, price=20)
    await stack.deposit(viewer, 1_000)
    await _watch(stack, viewer, a, 3)
    await _watch(stack, viewer, b, 1)

    earnings = (await stack.gql.execute(EARNINGS, token=creator.token))["data"]["earnings"]
    assert earnings["balance"] == {"amount": 35, "currency": "USD"}  # 70% of 30 + 70% of 20
    assert earnings["totalEarned"] == {"amount": 35}
    assert earnings["byVideo"] == [
        {"video": {"id": a}, "earned": {"amount": 21}, "refunded": {"amount": 0}, "minutes": 3},
        {"video": {"id": b}, "earned": {"amount": 14}, "refunded": {"amount": 0}, "minutes": 1},
    ]

    # An admin refunds one minute of video a: the viewer gets 10 back, the split reverses.
    charge = (await _charge_ids(stack, viewer))[-1]  # the oldest: a minute of video a
    body = await stack.gql.execute(
        REFUND, {"t": "CHARGE", "id": charge, "r": "stream stalled"}, token=admin.token
    )
    assert body["data"]["refund"]["amount"] == {"amount": 10, "currency": "USD"}
    again = await stack.gql.execute(
        REFUND, {"t": "CHARGE", "id": charge, "r": "again"}, token=admin.token
    )
    assert error_codes(again) == ["CONFLICT"]
    assert await stack.balance(viewer) == 1_000 - 50 + 10

    earnings = (await stack.gql.execute(EARNINGS, token=creator.token))["data"]["earnings"]
    assert earnings["balance"]["amount"] == 28
    assert earnings["totalEarned"]["amount"] == 35
    by_id = {row["video"]["id"]: row for row in earnings["byVideo"]}
    assert by_id[a]["earned"] == {"amount": 14} and by_id[a]["refunded"] == {"amount": 7}

    own = _totals((await _report(stack, creator.token))["data"]["revenueReport"])
    assert own == {
        "gross": 40,
        "creatorEarnings": 28,
        "platformRevenue": 12,
        "refunded": 10,
        "minutes": 4,
    }
    named = await _report(stack, admin.token, c=creator.id)
    assert _totals(named["data"]["revenueReport"]) == own
    after = _totals((await _report(stack, admin.token))["data"]["revenueReport"])
    assert {k: after[k] - before[k] for k in after} == own

    audit = await stack.audit()
    assert audit["ok"] is True and audit["violations"] == []
    assert audit["entries"] > 0 and audit["postings"] >= 2 * audit["entries"]


async def test_reports_are_bucketed_by_period(stack: Stack) -> None:
    creator = await stack.register()
    cases = [
        (
            "DAY",
            "2026-03-30",
            "2026-04-01",
            [
                ("2026-03-30", "2026-03-30"),
                ("2026-03-31", "2026-03-31"),
                ("2026-04-01", "2026-04-01"),
            ],
        ),
        # Weeks start on Monday; the first and last are clipped to the range.
        (
            "WEEK",
            "2026-03-04",
            "2026-03-17",
            [
                ("2026-03-04", "2026-03-08"),
                ("2026-03-09", "2026-03-15"),
                ("2026-03-16", "2026-03-17"),
            ],
        ),
        (
            "MONTH",
            "2025-12-30",
            "2026-02-02",
            [
                ("2025-12-30", "2025-12-31"),
                ("2026-01-01", "2026-01-31"),
                ("2026-02-01", "2026-02-02"),
            ],
        ),
    ]
    for period, start, end, expected in cases:
        body = await stack.gql.execute(
            REPORT, {"p": period, "f": start, "t": end}, token=creator.token
        )
        rows = body["data"]["revenueReport"]
        assert [(r["start"], r["end"]) for r in rows] == expected, period
        assert all(r["gross"]["amount"] == 0 and r["minutes"] == 0 for r in rows)


async def test_reports_and_earnings_are_private(stack: Stack) -> None:
    creator, other = await stack.register(), await stack.register()
    theirs = await _report(stack, other.token, c=creator.id)
    assert error_codes(theirs) == ["FORBIDDEN"]
    assert error_codes(await _report(stack, "")) == ["UNAUTHENTICATED"]
    query = """query U($r: [_Any!]!) { _entities(representations: $r) {
      ... on User { earnings { balance { amount } } } } }"""
    body = await stack.gql.execute(
        query, {"r": [{"__typename": "User", "id": creator.id}]}, token=other.token
    )
    assert error_codes(body) == ["FORBIDDEN"]
    assert body["data"]["_entities"] == [{"earnings": None}]
    own = await stack.gql.execute(
        query, {"r": [{"__typename": "User", "id": creator.id}]}, token=creator.token
    )
    assert own["data"]["_entities"] == [{"earnings": {"balance": {"amount": 0}}}]
    for variables in (
        {"p": "DAY", "f": "2026-02-02", "t": "2026-02-01"},
        {"p": "DAY", "f": "2024-01-01", "t": "2026-01-01"},
        {"p": "DAY", "f": "yesterday", "t": "2026-01-01"},
        {"p": "DAY", "f": "2026-01-01", "t": "2026-01-01", "c": "nope"},
    ):
        body = await stack.gql.execute(REPORT, variables, token=creator.token)
        assert error_codes(body) == ["BAD_USER_INPUT"], (variables, body)


async def test_only_admins_refund_and_audit(stack: Stack) -> None:
    creator, viewer = await stack.register(), await stack.register()
    video = await stack.video(creator, price=10)
    await stack.deposit(viewer, 500)
    await _watch(stack, viewer, video, 1)
    (charge,) = await _charge_ids(stack, viewer)
    for user in (viewer, creator):
        body = await stack.gql.execute(
            REFUND, {"t": "CHARGE", "id": charge, "r": "please"}, token=user.token
        )
        assert error_codes(body) == ["FORBIDDEN"]
        assert error_codes(await stack.gql.execute("{ ledgerAudit { ok } }", token=user.token)) == [
            "FORBIDDEN"
        ]
    assert error_codes(await stack.gql.execute("{ ledgerAudit { ok } }")) == ["UNAUTHENTICATED"]
    assert await stack.balance(viewer) == 490


async def test_refunding_deposits(stack: Stack) -> None:
    admin = await stack.admin()
    spender, saver = await stack.register(), await stack.register()
    creator = await stack.register()
    video = await stack.video(creator, price=30)
    spent = await stack.deposit(spender, 500)
    await _watch(stack, spender, video, 1)
    kept = await stack.deposit(saver, 200)

    # The spender's wallet no longer holds the whole deposit: refusing keeps it from going
    # below zero.
    body = await stack.gql.execute(
        REFUND, {"t": "DEPOSIT", "id": spent["id"], "r": "chargeback"}, token=admin.token
    )
    assert error_codes(body) == ["INSUFFICIENT_FUNDS"]
    assert await stack.balance(spender) == 470

    body = await stack.gql.execute(
        REFUND, {"t": "DEPOSIT", "id": kept["id"], "r": "chargeback"}, token=admin.token
    )
    assert body["data"]["refund"]["amount"]["amount"] == 200
    assert await stack.balance(saver) == 0
    history = await stack.gql.execute(CHARGES, token=saver.token)
    assert [e["node"]["kind"] for e in history["data"]["wallet"]["transactions"]["edges"]] == [
        "REFUND",
        "DEPOSIT",
    ]

    declined = await stack.gql.execute(
        'mutation { deposit(amount: 300, paymentToken: "tok_declined", idempotencyKey: "x") { id } }',
        token=saver.token,
    )
    declined_id = declined["errors"][0]["extensions"]["depositId"]
    for target, target_id, code in (
        ("DEPOSIT", declined_id, "CONFLICT"),
        ("DEPOSIT", "8a3f0c5e-0000-4000-8000-000000000000", "NOT_FOUND"),
        ("CHARGE", "8a3f0c5e-0000-4000-8000-000000000000", "NOT_FOUND"),
        ("CHARGE", "nope", "BAD_USER_INPUT"),
    ):
        body = await stack.gql.execute(
            REFUND, {"t": target, "id": target_id, "r": "r"}, token=admin.token
        )
        assert error_codes(body) == [code], (target, target_id, body)
    body = await stack.gql.execute(
        REFUND, {"t": "DEPOSIT", "id": kept["id"], "r": "   "}, token=admin.token
    )
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert (await stack.audit())["ok"] is True
