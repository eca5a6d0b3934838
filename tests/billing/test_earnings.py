"""Creators' earnings, revenue reports, admin refunds and the ledger audit over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.billing.conftest import END, START, Stack, User
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


async def _watch(stack: Stack, viewer: User, video: str, times: int) -> int:
    """`times` sessions, each ended at once; returns the minutes charged. Each charges its
    first minute as it starts, and ending charges any minute begun since (a minute is a
    second here: on a slow machine, one may have begun)."""
    minutes = 0
    for _ in range(times):
        body = await stack.gql.execute(START, {"v": video}, token=viewer.token)
        assert "errors" not in body, body
        ended = await stack.gql.execute(
            END, {"s": body["data"]["startPlayback"]["id"]}, token=viewer.token
        )
        assert ended["data"]["endPlayback"]["status"] == "ENDED", ended
        minutes += ended["data"]["endPlayback"]["chargedMinutes"]
    assert minutes >= times
    return minutes


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
    on_a = await _watch(stack, viewer, a, 3)
    on_b = await _watch(stack, viewer, b, 1)
    earned = 7 * on_a + 14 * on_b  # 70% of each 10 and each 20

    earnings = (await stack.gql.execute(EARNINGS, token=creator.token))["data"]["earnings"]
    assert earnings["balance"] == {"amount": earned, "currency": "USD"}
    assert earnings["totalEarned"] == {"amount": earned}
    # Highest first.
    assert sorted(earnings["byVideo"], key=lambda r: -r["earned"]["amount"]) == earnings["byVideo"]
    assert sorted(earnings["byVideo"], key=lambda r: r["video"]["id"] != a) == [
        {
            "video": {"id": a},
            "earned": {"amount": 7 * on_a},
            "refunded": {"amount": 0},
            "minutes": on_a,
        },
        {
            "video": {"id": b},
            "earned": {"amount": 14 * on_b},
            "refunded": {"amount": 0},
            "minutes": on_b,
        },
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
    gross = 10 * on_a + 20 * on_b
    assert await stack.balance(viewer) == 1_000 - gross + 10

    earnings = (await stack.gql.execute(EARNINGS, token=creator.token))["data"]["earnings"]
    assert earnings["balance"]["amount"] == earned - 7
    assert earnings["totalEarned"]["amount"] == earned
    by_id = {row["video"]["id"]: row for row in earnings["byVideo"]}
    assert by_id[a]["earned"] == {"amount": 7 * on_a - 7}
    assert by_id[a]["refunded"] == {"amount": 7}

    own = _totals((await _report(stack, creator.token))["data"]["revenueReport"])
    assert own == {
        "gross": gross - 10,
        "creatorEarnings": earned - 7,
        "platformRevenue": (gross - earned) - 3,
        "refunded": 10,
        "minutes": on_a + on_b,
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


async def test_report_dates_outside_the_calendar_we_keep_are_bad_input(stack: Stack) -> None:
    admin = await stack.admin()
    for period in ("DAY", "WEEK", "MONTH"):
        for start, end in (
            ("9999-12-31", "9999-12-31"),  # was OverflowError (DAY, WEEK) and "year 10000"
            ("9999-12-01", "9999-12-31"),
            ("2999-12-31", "3000-01-01"),
            ("0001-01-01", "0001-01-01"),
            ("1999-12-31", "2000-01-01"),
            ("0001-01-01", "9999-12-31"),
        ):
            body = await stack.gql.execute(
                REPORT, {"p": period, "f": start, "t": end}, token=admin.token
            )
            assert error_codes(body) == ["BAD_USER_INPUT"], (period, start, end, body)
        # The edges themselves are fine.
        for start, end in (("2000-01-01", "2000-01-03"), ("2999-12-29", "2999-12-31")):
            body = await stack.gql.execute(
                REPORT, {"p": period, "f": start, "t": end}, token=admin.token
            )
            assert "errors" not in body, body
            rows = body["data"]["revenueReport"]
            assert (rows[0]["start"], rows[-1]["end"]) == (start, end)
    # Too many periods is bad input too, whatever the period.
    for period, start, end in (
        ("DAY", "2026-01-01", "2027-02-05"),
        ("WEEK", "2026-01-01", "2034-01-01"),
        ("MONTH", "2026-01-01", "2060-01-01"),
    ):
        body = await stack.gql.execute(
            REPORT, {"p": period, "f": start, "t": end}, token=admin.token
        )
        assert error_codes(body) == ["BAD_USER_INPUT"], (period, body)


async def test_only_admins_refund_and_audit(stack: Stack) -> None:
    creator, viewer = await stack.register(), await stack.register()
    video = await stack.video(creator, price=10)
    await stack.deposit(viewer, 500)
    minutes = await _watch(stack, viewer, video, 1)
    charge = (await _charge_ids(stack, viewer))[0]
    for user in (viewer, creator):
        body = await stack.gql.execute(
            REFUND, {"t": "CHARGE", "id": charge, "r": "please"}, token=user.token
        )
        assert error_codes(body) == ["FORBIDDEN"]
        assert error_codes(await stack.gql.execute("{ ledgerAudit { ok } }", token=user.token)) == [
            "FORBIDDEN"
        ]
    assert error_codes(await stack.gql.execute("{ ledgerAudit { ok } }")) == ["UNAUTHENTICATED"]
    assert await stack.balance(viewer) == 500 - 10 * minutes


async def test_refunding_deposits(stack: Stack) -> None:
    admin = await stack.admin()
    spender, saver = await stack.register(), await stack.register()
    creator = await stack.register()
    video = await stack.video(creator, price=30)
    spent = await stack.deposit(spender, 500)
    minutes = await _watch(stack, spender, video, 1)
    kept = await stack.deposit(saver, 200)

    # The spender's wallet no longer holds the whole deposit: refusing keeps it from going
    # below zero.
    body = await stack.gql.execute(
        REFUND, {"t": "DEPOSIT", "id": spent["id"], "r": "chargeback"}, token=admin.token
    )
    assert error_codes(body) == ["INSUFFICIENT_FUNDS"]
    assert await stack.balance(spender) == 500 - 30 * minutes

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
