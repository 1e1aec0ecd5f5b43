"""The backtest's building blocks, on hand-made transactions: purchase days and returns, the split
into calibration and holdout, and the comparison tables (every figure computed by hand here)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from saas.analytics import backtest


def _rows(*rows: tuple[int, int, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ids, days, amounts = zip(*rows, strict=True)
    return np.array(ids), np.array(days), np.array(amounts, dtype=float)


def test_returns_are_never_purchase_days_and_refund_the_latest_purchases() -> None:
    got = backtest.purchase_days(*_rows(
        (1, 10, 100.0), (1, 12, -100.0),                    # bought, returned it all: one purchase day, spend 0
        (2, 10, 50.0), (2, 20, 80.0), (2, 21, -100.0),      # refunds day 20 in full, then 20 of day 10
        (3, 10, 40.0), (3, 10, -10.0), (3, 30, 5.0),        # a same-day refund; a later purchase untouched
        (4, 15, -20.0),                                      # only a return: not a buyer
        (5, 10, 0.0), (5, 11, 30.0), (5, 12, -50.0),        # a zero row; a return larger than all purchases
    ))
    assert list(zip(got.client.tolist(), got.day.tolist(), got.amount.tolist(), strict=True)) == [
        (1, 10, 0.0), (2, 10, 30.0), (2, 20, 0.0), (3, 10, 30.0), (3, 30, 5.0), (5, 11, 0.0)]
    assert got.stats == {"return_rows": 5, "zero_rows": 1, "returned": 280.0, "refunded_in_full": 3,
                         "unmatched_returns": 40.0}  # client 4's 20 and client 5's excess 20


def test_returns_ignored_are_dropped() -> None:
    got = backtest.purchase_days(*_rows((1, 10, 100.0), (1, 12, -100.0), (2, 3, -5.0), (1, 12, 7.0)),
                                 returns="ignore")
    assert list(zip(got.client.tolist(), got.day.tolist(), got.amount.tolist(), strict=True)) == [
        (1, 10, 100.0), (1, 12, 7.0)]
    with pytest.raises(ValueError):
        backtest.purchase_days(*_rows((1, 1, 1.0)), returns="error")


def test_split_into_calibration_and_holdout() -> None:
    ids, days, amounts = _rows(
        (1, 0, 10.0), (1, 7, 20.0), (1, 14, 30.0), (1, 30, 5.0), (1, 31, 6.0), (1, 60, 9.0),
        (2, 21, 10.0), (2, 25, -10.0), (2, 35, 3.0),         # holdout: 1 purchase day
        (3, 14, 8.0), (3, 29, -8.0),                          # refunds a calibration purchase after the cut-off
        (4, 35, 12.0),                                        # first bought in the holdout: not in the backtest
    )
    s = backtest.split(ids, days, amounts, calibration_end=28, holdout_end=56, unit=7.0)
    assert s.client.tolist() == [1, 2, 3]
    assert s.x.tolist() == [2.0, 0.0, 0.0]
    assert s.t_x.tolist() == [2.0, 0.0, 0.0]
    assert s.T.tolist() == pytest.approx([4.0, 1.0, 2.0])
    assert s.m_x.tolist() == [25.0, 0.0, 0.0]
    assert s.spend.tolist() == [60.0, 0.0, 8.0]  # client 3's refund came after the cut-off: unknown then
    assert s.holdout.tolist() == [2.0, 1.0, 0.0]  # day 60 is after the holdout end
    assert s.holdout_length == 4.0
    assert s.stats["holdout_new_clients"] == 1


def test_holdout_error_is_per_bucket() -> None:
    x = np.array([0, 0, 1, 1, 9, 12])
    predicted = np.array([0.5, 0.5, 1.0, 1.0, 3.0, 3.0])
    actual = np.array([0.0, 2.0, 1.0, 0.0, 4.0, 4.0])
    # bucket 0: |1.0 − 2.0| = 1; bucket 1: |2 − 1| = 1; bucket 7+: |6 − 8| = 2; over 6 clients
    assert backtest.holdout_error(x, predicted, actual) == pytest.approx(4 / 6)
    w = np.array([1, 1, 1, 1, 2, 2.0])
    assert backtest.holdout_error(x, predicted, actual, w) == pytest.approx((1 + 1 + 4) / 8)


def test_compare_tables() -> None:
    x = np.array([0, 0, 0, 1, 2, 7, 30])
    predicted = np.array([0.1, 0.2, 0.3, 1.0, 2.0, 5.0, 9.0])
    actual = np.array([0, 1, 0, 2, 0, 6, 7])
    status = np.array(["lost", "new", "lost", "active", "at_risk", "active", "zombie"])
    out = backtest.compare(x, predicted, actual, status)
    assert out["clients"] == 7
    rows = {r["repeat"]: r for r in out["by_repeat"]}
    assert list(rows) == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert rows["0"] == {"repeat": "0", "clients": 3, "predicted": pytest.approx(0.2), "actual": pytest.approx(1 / 3)}
    assert rows["7+"] == {"repeat": "7+", "clients": 2, "predicted": 7.0, "actual": 6.5}
    assert rows["3"] == {"repeat": "3", "clients": 0, "predicted": None, "actual": None}
    assert out["total"]["predicted"] == pytest.approx(17.6) and out["total"]["actual"] == 16.0
    assert out["total"]["error"] == pytest.approx(17.6 / 16 - 1)
    # |0.6 − 1| + |1 − 2| + |2 − 0| + |14 − 13| over 7
    assert out["total"]["mae"] == pytest.approx((0.4 + 1 + 2 + 1) / 7)
    assert [r["status"] for r in out["by_status"]] == ["new", "active", "at_risk", "lost", "zombie"]
    active = out["by_status"][1]
    assert active == {"status": "active", "clients": 2, "bought_again": 1.0, "actual": 4.0, "predicted": 3.0}
    lost = out["by_status"][3]
    assert lost == {"status": "lost", "clients": 2, "bought_again": 0.0, "actual": 0.0, "predicted": pytest.approx(0.2)}
    assert json.loads(json.dumps(out))["clients"] == 7
    assert "by_status" not in backtest.compare(x, predicted, actual)
