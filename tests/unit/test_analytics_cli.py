"""`saas analytics fit`: a CSV of transactions in, model parameters (JSON) and predictions out."""
from __future__ import annotations

import csv
import json
from datetime import date, timedelta

import numpy as np
import pytest
from click.testing import CliRunner

from saas.analytics import btyd, simulate
from saas.analytics.cli import read_transactions
from saas.cli import main
from saas.core.config import get_settings
from saas.core import clock

START = date(2022, 1, 3)
END = START + timedelta(weeks=78)
PARETO = {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67}
SPEND = {"p": 6.25, "q": 3.74, "gamma": 15.44}


@pytest.fixture(autouse=True)
def _settings(tmp_path, monkeypatch):
    """`saas` reads its settings first: point them at a throwaway data directory."""
    monkeypatch.setenv("SAAS_ENV", "test")
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _transactions(n: int, seed: int = 1) -> list[tuple[str, str, str]]:
    """Pareto/NBD purchase histories as dated rows, with Gamma-Gamma amounts.

    Each client joins on a day in the first year; simulate.pareto_nbd gives the repeat count x and
    the time of the last repeat t_x (weeks) up to END. Given them, the other x − 1 repeat times of a
    Poisson process are uniform on (0, t_x). Amounts: z ~ Γ(p, ν) per transaction, ν ~ Γ(q, γ) per
    client — the Gamma-Gamma spend process."""
    rng = np.random.default_rng(seed)
    first = START.toordinal() + rng.integers(0, 364, n)
    T = (END.toordinal() - first) / 7
    x, t_x, _ = simulate.pareto_nbd(n, **PARETO, T=T, seed=seed)
    nu = rng.gamma(SPEND["q"], 1 / SPEND["gamma"], n)
    rows = []
    for i in range(n):
        k = int(x[i])
        times = np.r_[0.0, rng.uniform(0, t_x[i], max(k - 1, 0)), [t_x[i]] if k else []]
        for t in np.sort(times):
            day = date.fromordinal(int(first[i] + np.floor(t * 7)))
            rows.append((f"C{i:05d}", day.isoformat(), f"{rng.gamma(SPEND['p'], 1 / nu[i]):.2f}"))
    rng.shuffle(rows)  # the file need not be sorted
    return rows


def _write(path, rows, header=("client_id", "date", "amount")):
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _run(*args: str):
    return CliRunner().invoke(main, ["analytics", "fit", *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def rows() -> list[tuple[str, str, str]]:
    return _transactions(3000)


def _summary(rows, end: date | None = None) -> dict[str, tuple[int, float, float]]:
    """client -> (x, t_x, T) in weeks, computed directly from the rows."""
    days: dict[str, set[int]] = {}
    last = max(date.fromisoformat(d) for _c, d, _a in rows) if end is None else end
    for c, d, _a in rows:
        o = date.fromisoformat(d).toordinal()
        if o <= last.toordinal():
            days.setdefault(c, set()).add(o)
    return {c: (len(s) - 1, (max(s) - min(s)) / 7, (last.toordinal() - min(s)) / 7) for c, s in days.items()}


def test_fit_all_models_and_predict(tmp_path, rows) -> None:
    src = _write(tmp_path / "tx.csv", rows)
    out = tmp_path / "pred.csv"
    result = _run(str(src), "--model", "all", "--predict", str(out))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)

    expected = _summary(rows)
    last_date = max(d for _c, d, _a in rows)
    assert report["unit"] == "week" and report["calibration_end"] == last_date
    assert report["clients"] == len(expected) == 3000
    assert report["repeat_buyers"] == sum(1 for x, _t, _T in expected.values() if x > 0)
    assert report["transactions"] == sum(x + 1 for x, _t, _T in expected.values())
    assert set(report["models"]) == {"pareto-nbd", "bg-nbd", "mbg-nbd", "gamma-gamma"}
    names = {"pareto-nbd": {"r", "alpha", "s", "beta"}, "bg-nbd": {"r", "alpha", "a", "b"},
             "mbg-nbd": {"r", "alpha", "a", "b"}, "gamma-gamma": {"p", "q", "gamma"}}
    for model, fit in report["models"].items():
        assert set(fit["params"]) == names[model], model
        assert all(v is not None and 0 < v < 1e6 for v in fit["params"].values()), (model, fit)
        assert fit["converged"] is True and fit["usable"] is True and fit["reason"] is None, (model, fit)
        assert fit["log_likelihood"] is not None and np.isfinite(fit["log_likelihood"])
        assert all(se is not None and 0 < se < fit["params"][k] for k, se in fit["se"].items()), (model, fit)
    # no holdout: the purchase model with the lowest BIC
    bics = {m: report["models"][m]["bic"] for m in ("pareto-nbd", "bg-nbd", "mbg-nbd")}
    assert report["chosen"]["model"] == min(bics, key=bics.get)
    assert report["predictions"]["purchase_model"] == report["chosen"]["model"]
    assert report["predictions"]["spend_model"] == "gamma-gamma"
    # published convention in weeks: near the simulated values (3,000 clients: r, α within ~3 sd)
    pareto = report["models"]["pareto-nbd"]["params"]
    assert pareto["r"] == pytest.approx(PARETO["r"], rel=0.3)
    assert pareto["alpha"] == pytest.approx(PARETO["alpha"], rel=0.3)
    gg = report["models"]["gamma-gamma"]["params"]
    assert gg["q"] == pytest.approx(SPEND["q"], rel=0.3)

    with out.open(newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["client_id", "x", "t_x", "T", "p_alive", "expected_purchases",
                                     "expected_spend", "clv"]
        predicted = list(reader)
    assert len(predicted) == 3000 and len({p["client_id"] for p in predicted}) == 3000
    for p in predicted:
        x, t_x, T = expected[p["client_id"]]
        assert int(p["x"]) == x
        assert float(p["t_x"]) == pytest.approx(t_x, abs=1e-8) and float(p["T"]) == pytest.approx(T, abs=1e-8)
        assert 0.0 <= float(p["p_alive"]) <= 1.0
        assert float(p["expected_purchases"]) >= 0.0
        assert float(p["expected_spend"]) > 0.0
        assert float(p["clv"]) > 0.0
    one_timers = [p for p in predicted if p["x"] == "0"]
    mean = gg["p"] * gg["gamma"] / (gg["q"] - 1)
    assert all(float(p["expected_spend"]) == pytest.approx(mean, rel=1e-8) for p in one_timers)


def test_units_are_not_rescaled(tmp_path, rows) -> None:
    """In days, the time-scale parameter is 7× the weekly one; the shape parameters are the same."""
    src = _write(tmp_path / "tx.csv", rows)
    weeks = json.loads(_run(str(src), "--model", "bg-nbd").stdout)["models"]["bg-nbd"]["params"]
    result = _run(str(src), "--model", "bg-nbd", "--unit", "day")
    days = json.loads(result.stdout)
    assert days["unit"] == "day"
    p = days["models"]["bg-nbd"]["params"]
    assert p["alpha"] / weeks["alpha"] == pytest.approx(7.0, rel=2e-3)
    for name in ("r", "a", "b"):
        assert p[name] == pytest.approx(weeks[name], rel=2e-3), name


def test_calibration_end_and_horizon(tmp_path, rows) -> None:
    """Issue 15 changed this test: rows after --calibration-end are now refused (they were silently
    dropped), so the file holds only the history up to it; and without Gamma-Gamma the expected spend
    is the client's own mean purchase (it was empty), so CLV can be computed."""
    end = START + timedelta(weeks=40)  # some clients join later: they are not in this history
    history = [r for r in rows if r[1] <= end.isoformat()]
    src = _write(tmp_path / "tx.csv", history)
    out1, out2 = tmp_path / "p1.csv", tmp_path / "p2.csv"
    r1 = _run(str(src), "--model", "pareto-nbd", "--calibration-end", end.isoformat(), "--predict", str(out1))
    assert r1.exit_code == 0, r1.output
    report = json.loads(r1.stdout)
    expected = _summary(rows, end)
    assert report["calibration_end"] == end.isoformat()
    assert set(report["models"]) == {"pareto-nbd"} and report["chosen"]["model"] == "pareto-nbd"
    assert report["clients"] == len(expected) < 3000
    assert report["transactions"] == sum(x + 1 for x, _t, _T in expected.values())
    assert _run(str(src), "--model", "pareto-nbd", "--calibration-end", end.isoformat(), "--predict", str(out2),
                "--horizon", "104").exit_code == 0
    spent: dict[str, list[float]] = {}
    for c, _d, a in history:
        spent.setdefault(c, []).append(float(a))
    with out1.open() as f1, out2.open() as f2:
        a, b = list(csv.DictReader(f1)), list(csv.DictReader(f2))
    assert [r["client_id"] for r in a] == [r["client_id"] for r in b]
    for ra, rb in zip(a, b, strict=True):
        assert float(ra["T"]) == pytest.approx(expected[ra["client_id"]][2])
        assert float(rb["expected_purchases"]) > float(ra["expected_purchases"])
        # the client's mean per purchase day (same-day rows are one purchase)
        x = expected[ra["client_id"]][0]
        assert float(ra["expected_spend"]) == pytest.approx(sum(spent[ra["client_id"]]) / (x + 1), rel=1e-9)
    assert report["predictions"]["spend_model"] == "client-mean"


# ---- bad input -------------------------------------------------------------------------------


def _fails(result, *words: str) -> None:
    assert result.exit_code != 0
    for word in words:
        assert word in result.output, (word, result.output)


def test_missing_column(tmp_path) -> None:
    src = _write(tmp_path / "tx.csv", [("A", "2024-01-01", "10")], header=("client_id", "date", "sum"))
    _fails(_run(str(src)), "missing column amount")


def test_bad_date_names_the_line(tmp_path) -> None:
    src = _write(tmp_path / "tx.csv", [("A", "2024-01-01", "10"), ("B", "2024-13-01", "12.5"),
                                       ("C", "2024-01-05", "3")])
    _fails(_run(str(src)), "line 3", "bad date", "'2024-13-01'", "YYYY-MM-DD")
    src = _write(tmp_path / "tx.csv", [("A", "2024-01-01", "10"), ("B", "01.02.2024", "12.5")])
    _fails(_run(str(src)), "line 3", "bad date", "'01.02.2024'")


def test_bad_amount_names_the_line(tmp_path) -> None:
    src = _write(tmp_path / "tx.csv", [("A", "2024-01-01", "10"), ("B", "2024-01-02", "12.5"),
                                       ("C", "2024-01-05", "12,50")])
    _fails(_run(str(src)), "line 4", "bad amount", "'12,50'")
    src = _write(tmp_path / "tx.csv", [("A", "2024-01-01", "nan")])
    _fails(_run(str(src)), "line 2", "bad amount")


def test_empty_file_and_header_only(tmp_path) -> None:
    (tmp_path / "empty.csv").write_text("")
    _fails(_run(str(tmp_path / "empty.csv")), "empty")
    src = _write(tmp_path / "header.csv", [])
    _fails(_run(str(src)), "no transactions")


def test_bad_options(tmp_path) -> None:
    src = _write(tmp_path / "tx.csv", [("A", "2024-01-01", "10"), ("A", "2024-02-01", "10")])
    _fails(_run(str(src), "--calibration-end", "2024/01/31"), "--calibration-end")
    _fails(_run(str(src), "--calibration-end", "2023-12-31"), "no transactions on or before")
    _fails(_run(str(src), "--model", "gamma-gamma", "--predict", str(tmp_path / "p.csv")), "purchase model")
    _fails(_run(str(tmp_path / "missing.csv")), "does not exist")


def test_reads_100k_rows_in_any_column_order(tmp_path) -> None:
    rng = np.random.default_rng(0)
    n = 100_000
    days = START.toordinal() + rng.integers(0, 700, n)
    with (tmp_path / "big.csv").open("w") as f:
        f.write("date,amount,client_id,comment\n")  # any column order, extra columns ignored
        f.writelines(f"{date.fromordinal(int(d)).isoformat()},{a:.2f},c{c},x\n"
                     for d, a, c in zip(days, rng.gamma(2.0, 500.0, n), rng.integers(0, 20_000, n), strict=True))
    ids, day_numbers, amounts, count = read_transactions(tmp_path / "big.csv")
    assert count == n and len(ids) == n and day_numbers.tolist() == days.tolist()
    assert amounts.dtype == float and (amounts > 0).all()


# ---- issue 15: returns, dates, degenerate data, backtest, CLV ---------------------------------


def _history(rows, end: date) -> list[tuple[str, str, str]]:
    return [r for r in rows if r[1] <= end.isoformat()]


def test_rows_after_the_calibration_end_or_today_are_refused(tmp_path, rows) -> None:
    end = START + timedelta(weeks=40)
    src = _write(tmp_path / "tx.csv", rows)
    late = [k for k, r in enumerate(rows) if r[1] > end.isoformat()]
    result = _run(str(src), "--calibration-end", end.isoformat())
    # the count, and the first offending rows with their line numbers (line 1 is the header)
    _fails(result, f"{len(late)} rows dated after the calibration end ({end.isoformat()})",
           f"line {late[0] + 2} ({rows[late[0]][0]}, {rows[late[0]][1]}, {rows[late[0]][2]})",
           f"and {len(late) - 5} more")
    # a row dated after today, even when no calibration end is given
    future = [*_history(rows, end), ("C99999", "2030-01-05", "10.00"), ("C99998", "2030-02-01", "12.00")]
    src = _write(tmp_path / "future.csv", future)
    with clock.frozen(date(2029, 6, 1)):
        result = _run(str(src))
    _fails(result, "2 rows dated after today (2029-06-01)", f"line {len(future)} (C99999, 2030-01-05, 10.00)")
    with clock.frozen(date(2029, 6, 1)):
        _fails(_run(str(src), "--calibration-end", "2029-07-01"), "after today")


def _with_returns(rows, end: date) -> list[tuple[str, str, str]]:
    """The history plus four clients whose stories involve returns (their days are in the history)."""
    d = [(START + timedelta(days=k)).isoformat() for k in (10, 13, 40, 41, 60)]
    return _history(rows, end) + [
        ("R1", d[0], "100.00"), ("R1", d[1], "-100.00"),                           # bought, returned it all
        ("R2", d[0], "50.00"), ("R2", d[2], "80.00"), ("R2", d[3], "-80.00"),      # second purchase refunded
        ("R3", d[0], "100.00"), ("R3", d[2], "60.00"), ("R3", d[2], "-30.00"),     # half of it refunded
        ("R4", d[4], "-20.00"),                                                    # only a return
    ]


def test_returns_are_never_purchases_and_reduce_spend(tmp_path, rows) -> None:
    end = START + timedelta(weeks=40)
    src = _write(tmp_path / "tx.csv", _with_returns(rows, end))
    out = tmp_path / "p.csv"
    result = _run(str(src), "--model", "pareto-nbd", "--calibration-end", end.isoformat(), "--predict", str(out))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["returns"] == {"mode": "returns", "rows": 4, "amount": 230.0, "refunded_in_full": 2,
                                 "unmatched_amount": 20.0}
    assert report["clients"] == len(_summary(_history(rows, end))) + 3  # R4 never bought: not a client
    with out.open() as f:
        got = {r["client_id"]: r for r in csv.DictReader(f)}
    assert "R4" not in got
    # a return is never a purchase day: a purchase and its refund is x = 0
    assert got["R1"]["x"] == "0" and got["R2"]["x"] == "1" and got["R3"]["x"] == "1"
    assert float(got["R2"]["t_x"]) == pytest.approx(30 / 7)  # the last purchase, not the return a day later
    assert float(got["R1"]["expected_spend"]) == 0.0           # everything refunded: spend 0, never negative
    assert float(got["R2"]["expected_spend"]) == pytest.approx((50 + 0) / 2)
    assert float(got["R3"]["expected_spend"]) == pytest.approx((100 + 30) / 2)
    assert float(got["R1"]["clv"]) == 0.0 and float(got["R3"]["clv"]) > 0

    ignored = _run(str(src), "--model", "pareto-nbd", "--calibration-end", end.isoformat(), "--returns", "ignore",
                   "--predict", str(out))
    assert ignored.exit_code == 0, ignored.output
    with out.open() as f:
        got = {r["client_id"]: r for r in csv.DictReader(f)}
    assert got["R1"]["x"] == "0" and got["R2"]["x"] == "1" and got["R3"]["x"] == "1"
    assert float(got["R1"]["expected_spend"]) == 100.0 and "R4" not in got
    assert float(got["R2"]["expected_spend"]) == pytest.approx((50 + 80) / 2)

    refused = _run(str(src), "--calibration-end", end.isoformat(), "--returns", "error")
    _fails(refused, "4 rows with a negative amount", "(R1, ", "-100.00)")


def _one_row_each(n: int, day: date, repeat: int = 0) -> list[tuple[str, str, str]]:
    return [(f"K{i}", (day + timedelta(days=i % 50)).isoformat(), "10.00") for i in range(n)] + [
        (f"K{i}", (day + timedelta(days=60 + i)).isoformat(), "10.00") for i in range(repeat)]


@pytest.mark.parametrize(("case", "words"), [
    ("one-time buyers", ["No client has bought a second time", "200 clients, 0 with a repeat purchase"]),
    ("one client", ["only one client"]),
    ("one day", ["T = 0 for everyone"]),
    ("zero amounts", ["every amount is zero or negative"]),
])
def test_degenerate_data_is_refused_with_a_reason(tmp_path, case, words) -> None:
    day = date(2024, 1, 1)
    rows = {
        "one-time buyers": _one_row_each(200, day),
        "one client": [("A", (day + timedelta(days=7 * k)).isoformat(), "10") for k in range(30)],
        "one day": [(f"K{i}", day.isoformat(), "10") for i in range(100)] + [("K1", day.isoformat(), "5")],
        "zero amounts": [(f"K{i % 20}", (day + timedelta(days=i)).isoformat(), "0") for i in range(100)],
    }[case]
    result = _run(str(_write(tmp_path / "tx.csv", rows)), "--predict", str(tmp_path / "p.csv"))
    _fails(result, *words)
    assert '"converged": true' not in result.output
    assert not (tmp_path / "p.csv").exists()


def test_too_little_data_gives_rejected_fits_never_absurd_ones(tmp_path) -> None:
    """Two repeat buyers among 40 clients: data_problem lets it through, the fits must not be used."""
    rows = _one_row_each(40, date(2024, 1, 1), repeat=2)
    result = _run(str(_write(tmp_path / "tx.csv", rows)), "--predict", str(tmp_path / "p.csv"))
    report = json.loads(result.stdout)
    lo, hi = 1e-6, 1e6
    for model in ("pareto-nbd", "bg-nbd", "mbg-nbd"):
        fit = report["models"][model]
        in_range = all(v is not None and lo <= v <= hi for v in fit["params"].values())
        if fit["usable"]:  # a usable fit is a real optimum with sane parameters
            assert fit["converged"] and in_range and fit["log_likelihood"] < 0, fit
        else:
            assert fit["reason"], fit
    if report["chosen"]["model"] is None:
        assert result.exit_code != 0 and "No purchase model fits" in result.output
        assert not (tmp_path / "p.csv").exists()
    assert report["models"]["gamma-gamma"]["usable"] is False  # 2 repeat buyers: too few for spend


def _holdout_counts(rows, cal_end: date, hold_end: date) -> dict[str, int]:
    """Purchase days per client in (cal_end, hold_end], for clients who bought by cal_end."""
    seen = {c for c, d, _a in rows if d <= cal_end.isoformat()}
    later: dict[str, set[str]] = {c: set() for c in seen}
    for c, d, _a in rows:
        if cal_end.isoformat() < d <= hold_end.isoformat() and c in seen:
            later[c].add(d)
    return {c: len(v) for c, v in later.items()}


def test_holdout_end_prints_the_backtest(tmp_path, rows) -> None:
    cal_end, hold_end = START + timedelta(weeks=52), START + timedelta(weeks=78)
    src = _write(tmp_path / "tx.csv", rows)
    result = _run(str(src), "--calibration-end", cal_end.isoformat(), "--holdout-end", hold_end.isoformat())
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    bt = report["backtest"]
    assert bt["holdout_end"] == hold_end.isoformat() and bt["holdout_length"] == pytest.approx(26.0)
    assert bt["model"] == report["chosen"]["model"]
    errors = bt["errors"]
    assert set(errors) == {m for m in ("pareto-nbd", "bg-nbd", "mbg-nbd") if report["models"][m]["usable"]}
    assert errors[bt["model"]] == min(errors.values()) and "lowest holdout error" in report["chosen"]["why"]

    summary = _summary(rows, cal_end)
    actual = _holdout_counts(rows, cal_end, hold_end)
    assert [b["repeat"] for b in bt["by_repeat"]] == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert sum(b["clients"] for b in bt["by_repeat"]) == bt["clients"] == len(summary)
    for b in bt["by_repeat"]:
        members = [c for c, (x, _t, _T) in summary.items() if (str(x) if x < 7 else "7+") == b["repeat"]]
        assert b["clients"] == len(members)
        if members:
            assert b["actual"] == pytest.approx(sum(actual[c] for c in members) / len(members), rel=1e-12)
    assert bt["total"]["actual"] == sum(actual.values())
    # 3,000 simulated Pareto/NBD clients, 26 weeks: the chosen model's total within ±15% of what happened
    assert bt["total"]["predicted"] == pytest.approx(bt["total"]["actual"], rel=0.15)
    assert bt["total"]["mae"] == pytest.approx(errors[bt["model"]], rel=1e-9)

    _fails(_run(str(src), "--holdout-end", hold_end.isoformat()), "--calibration-end")
    _fails(_run(str(src), "--calibration-end", hold_end.isoformat(), "--holdout-end", cal_end.isoformat()),
           "must be after --calibration-end")


def test_predict_clv_is_the_discounted_sum(tmp_path, rows) -> None:
    src = _write(tmp_path / "tx.csv", rows)
    out = tmp_path / "p.csv"
    result = _run(str(src), "--model", "bg-nbd", "--predict", str(out), "--discount", "0.2", "--margin", "0.4",
                  "--horizon-months", "18")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["predictions"]["clv"] == {"months": 18, "annual_discount": 0.2, "margin": 0.4}
    params = report["models"]["bg-nbd"]["params"]
    with out.open() as f:
        predicted = list(csv.DictReader(f))[:50]
    month = 365.25 / 12 / 7
    for p in predicted:
        x, t_x, T = (np.array([float(p[k])]) for k in ("x", "t_x", "T"))
        cum = [0.0] + [float(btyd.bgnbd_expected(params, m * month, x, t_x, T)[0]) for m in range(1, 19)]
        hand = sum((cum[m] - cum[m - 1]) * float(p["expected_spend"]) * 0.4 / 1.2 ** (m / 12) for m in range(1, 19))
        assert float(p["clv"]) == pytest.approx(hand, rel=1e-6)
    _fails(_run(str(src), "--predict", str(out), "--discount", "10"), "--discount")
