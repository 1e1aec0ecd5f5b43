"""`saas analytics fit`: a CSV of transactions in, model parameters (JSON) and predictions out."""
from __future__ import annotations

import csv
import json
from datetime import date, timedelta

import numpy as np
import pytest
from click.testing import CliRunner

from saas.analytics import simulate
from saas.analytics.cli import read_transactions
from saas.cli import main
from saas.config import get_settings

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
        assert fit["converged"] is True, (model, fit)
        assert fit["log_likelihood"] is not None and np.isfinite(fit["log_likelihood"])
    # published convention in weeks: near the simulated values (3,000 clients: r, α within ~3 sd)
    pareto = report["models"]["pareto-nbd"]["params"]
    assert pareto["r"] == pytest.approx(PARETO["r"], rel=0.3)
    assert pareto["alpha"] == pytest.approx(PARETO["alpha"], rel=0.3)
    gg = report["models"]["gamma-gamma"]["params"]
    assert gg["q"] == pytest.approx(SPEND["q"], rel=0.3)

    with out.open(newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["client_id", "x", "t_x", "T", "p_alive", "expected_purchases",
                                     "expected_spend"]
        predicted = list(reader)
    assert len(predicted) == 3000 and len({p["client_id"] for p in predicted}) == 3000
    for p in predicted:
        x, t_x, T = expected[p["client_id"]]
        assert int(p["x"]) == x
        assert float(p["t_x"]) == pytest.approx(t_x, abs=1e-8) and float(p["T"]) == pytest.approx(T, abs=1e-8)
        assert 0.0 <= float(p["p_alive"]) <= 1.0
        assert float(p["expected_purchases"]) >= 0.0
        assert float(p["expected_spend"]) > 0.0
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
    src = _write(tmp_path / "tx.csv", rows)
    end = START + timedelta(weeks=40)  # some clients join later: they drop out
    out1, out2 = tmp_path / "p1.csv", tmp_path / "p2.csv"
    r1 = _run(str(src), "--model", "pareto-nbd", "--calibration-end", end.isoformat(), "--predict", str(out1))
    assert r1.exit_code == 0, r1.output
    report = json.loads(r1.stdout)
    expected = _summary(rows, end)
    assert report["calibration_end"] == end.isoformat()
    assert report["clients"] == len(expected) < 3000
    assert report["transactions"] == sum(x + 1 for x, _t, _T in expected.values())
    assert _run(str(src), "--model", "pareto-nbd", "--calibration-end", end.isoformat(), "--predict", str(out2),
                "--horizon", "104").exit_code == 0
    with out1.open() as f1, out2.open() as f2:
        a, b = list(csv.DictReader(f1)), list(csv.DictReader(f2))
    assert [r["client_id"] for r in a] == [r["client_id"] for r in b]
    for ra, rb in zip(a, b, strict=True):
        assert float(ra["T"]) == pytest.approx(expected[ra["client_id"]][2])
        assert float(rb["expected_purchases"]) > float(ra["expected_purchases"])
        assert ra["expected_spend"] == ""  # no Gamma-Gamma fitted with --model pareto-nbd


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
