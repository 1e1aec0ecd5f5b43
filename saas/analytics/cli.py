"""`saas analytics …`: the models for analysts, from a CSV of transactions."""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import click
import numpy as np

if TYPE_CHECKING:
    from saas.analytics import btyd

UNITS = {"day": 1, "week": 7}
PURCHASE_MODELS = ("pareto-nbd", "bg-nbd", "mbg-nbd")
ALL_MODELS = (*PURCHASE_MODELS, "gamma-gamma")
COLUMNS = ("client_id", "date", "amount")


@click.group()
def analytics() -> None:
    """Fit and apply the client-base models outside the product."""


# ---- reading the transactions ----------------------------------------------------------------


def _parse_date(text: str) -> date:
    """YYYY-MM-DD only (date.fromisoformat alone would also take 20240101 or 2024-W01-1)."""
    text = text.strip()
    if len(text) != 10 or text[4] != "-" or text[7] != "-":
        raise ValueError(text)
    return date.fromisoformat(text)


@dataclass
class Transactions:
    ids: list[str]
    days: np.ndarray
    amounts: np.ndarray
    lines: list[int]
    amount_texts: list[str]

    def describe(self, rows: np.ndarray, limit: int = 5) -> str:
        """"line 7 (C12, 2031-01-05, 250.00); …" for the first `limit` of these row indexes."""
        shown = [f"line {self.lines[k]} ({self.ids[k]}, {date.fromordinal(int(self.days[k])).isoformat()}, "
                 f"{self.amount_texts[k].strip()})" for k in rows[:limit].tolist()]
        more = len(rows) - limit
        return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


def read_transactions(path: Path) -> tuple[list[str], np.ndarray, np.ndarray, int]:
    """(client ids, day numbers, amounts, rows) from a CSV with client_id, date and amount columns."""
    t = read_rows(path)
    return t.ids, t.days, t.amounts, len(t.ids)


def read_rows(path: Path) -> Transactions:
    """The transactions of a CSV with client_id, date and amount columns, with their line numbers.

    The csv module reads rows into plain lists; dates are parsed once per distinct value (a file
    of 100k rows has a few hundred distinct days), then everything becomes numpy arrays.
    Errors name the line of the file (the header is line 1)."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise click.ClickException(f"{path}: {exc.strerror}") from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            while header is not None and not any(cell.strip() for cell in header):
                header = next(reader, None)  # leading blank lines
            if header is None:
                raise click.ClickException(f"{path}: the file is empty (expected a header: {','.join(COLUMNS)})")
            names = [cell.strip().lower() for cell in header]
            missing = [c for c in COLUMNS if c not in names]
            if missing:
                raise click.ClickException(
                    f"{path}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                    f"(the header must name {', '.join(COLUMNS)}; found: {', '.join(names) or 'nothing'})")
            i_id, i_date, i_amount = (names.index(c) for c in COLUMNS)
            width = max(i_id, i_date, i_amount) + 1
            ids: list[str] = []
            date_texts: list[str] = []
            amount_texts: list[str] = []
            lines: list[int] = []
            for row in reader:
                if not row or not any(cell.strip() for cell in row):
                    continue
                if len(row) < width:
                    raise click.ClickException(
                        f"{path}, line {reader.line_num}: {len(row)} field{'s' if len(row) != 1 else ''}, "
                        f"expected at least {width}")
                ids.append(row[i_id].strip())
                date_texts.append(row[i_date])
                amount_texts.append(row[i_amount])
                lines.append(reader.line_num)
        except csv.Error as exc:
            raise click.ClickException(f"{path}, line {reader.line_num}: {exc}") from None
        except UnicodeDecodeError:
            raise click.ClickException(f"{path}: not UTF-8 text") from None
    if not ids:
        raise click.ClickException(f"{path}: no transactions after the header")

    for k, client in enumerate(ids):
        if not client:
            raise click.ClickException(f"{path}, line {lines[k]}: empty client_id")

    ordinals: dict[str, int] = {}
    for text in set(date_texts):
        try:
            ordinals[text] = _parse_date(text).toordinal()
        except ValueError:
            ordinals[text] = -1
    days = np.fromiter((ordinals[t] for t in date_texts), dtype=np.int64, count=len(date_texts))
    bad = np.flatnonzero(days < 0)
    if len(bad):
        k = int(bad[0])
        raise click.ClickException(
            f"{path}, line {lines[k]}: bad date {date_texts[k]!r} (expected YYYY-MM-DD)"
            + (f"; {len(bad) - 1} more bad date{'s' if len(bad) > 2 else ''}" if len(bad) > 1 else ""))

    try:  # the fast path: every amount parses
        amounts = np.array([float(t) for t in amount_texts], dtype=float)
    except ValueError:
        amounts = np.full(len(amount_texts), math.nan)  # the loop below names the first bad one
    if not np.isfinite(amounts).all():
        for k, text in enumerate(amount_texts):
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise click.ClickException(
                    f"{path}, line {lines[k]}: bad amount {text!r} (expected a decimal number such as 1250.50)")
    return Transactions(ids, days, amounts, lines, amount_texts)


# ---- the command -----------------------------------------------------------------------------

RETURNS_HELP = ("How negative amounts are treated. returns: they are refunds, never purchase days; they reduce "
                "the spend of the same day's and then the latest earlier purchases, never below zero. ignore: they "
                "are dropped. error: they stop the command.")


def _number(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _fmt(value: float) -> str:
    return f"{value:.10g}" if math.isfinite(value) else ""


def _day(text: str | None, option: str) -> int | None:
    if text is None:
        return None
    try:
        return _parse_date(text).toordinal()
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a date YYYY-MM-DD", param_hint=option) from None


def _iso(day: int) -> str:
    return date.fromordinal(int(day)).isoformat()


def _refuse(t: Transactions, rows: np.ndarray, what: str) -> None:
    if len(rows):
        raise click.ClickException(f"{len(rows)} row{'s' if len(rows) != 1 else ''} {what}: {t.describe(rows)}")


def _fit_report(fit: btyd.Fit, holdout_error: float | None = None) -> dict:
    out = fit.as_dict()
    del out["model"]
    from saas.analytics import selection

    out["reason"] = selection.reason_text(fit.reason)  # the reason's English words, not its code
    if holdout_error is not None:
        out["holdout_error"] = _number(holdout_error)
    return out


@analytics.command("fit")
@click.argument("csv_file", metavar="FILE.csv", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--unit", type=click.Choice(list(UNITS)), default="week", show_default=True,
              help="Time unit of the model parameters (and of t_x, T and --horizon).")
@click.option("--calibration-end", metavar="YYYY-MM-DD", default=None,
              help="The history runs to this day (T counts to it). Default: the last date in the file. "
                   "Rows after it are refused, unless --holdout-end makes them the holdout.")
@click.option("--holdout-end", metavar="YYYY-MM-DD", default=None,
              help="Backtest: fit up to --calibration-end, predict the purchases up to this day, and print "
                   "predicted against actual (per number of repeat purchases and in total).")
@click.option("--model", "model", type=click.Choice(["auto", "all", *ALL_MODELS]), default="auto",
              show_default=True,
              help="auto (or all): fit the three purchase models and Gamma-Gamma, and use the purchase model with "
                   "the lowest holdout error (with --holdout-end), else the lowest BIC. A named model is fitted "
                   "alone.")
@click.option("--returns", "returns", type=click.Choice(["returns", "ignore", "error"]), default="returns",
              show_default=True, help=RETURNS_HELP)
@click.option("--predict", "predict_path", metavar="OUT.csv", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write per-client P(alive), expected purchases, expected spend and CLV.")
@click.option("--horizon", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Horizon of expected_purchases in --unit units. Default: 52 weeks or 365 days.")
@click.option("--horizon-months", type=click.IntRange(min=1, max=600), default=12, show_default=True,
              help="CLV horizon in months.")
@click.option("--discount", type=click.FloatRange(min=0, max=1), default=0.10, show_default=True,
              help="Annual discount rate of the CLV, as a fraction (0.10 = 10%).")
@click.option("--margin", type=click.FloatRange(min=0, max=1, min_open=True), default=1.0, show_default=True,
              help="Gross margin as a share of revenue (1.0: CLV is revenue).")
def fit(csv_file: Path, unit: str, calibration_end: str | None, holdout_end: str | None, model: str,
        returns: str, predict_path: Path | None, horizon: float | None, horizon_months: int, discount: float,
        margin: float) -> None:
    """Fit BTYD models to a CSV of transactions (client_id,date,amount) and print them as JSON.

    Purchases are positive amounts; one client's purchases on one day are one purchase. Parameters
    are in the published convention for the chosen unit (not rescaled). Each fit says whether it is
    usable and why not (not converged, a parameter at the boundary, a flat likelihood); the data
    themselves may be refused (one client, no repeat buyers, everything on one day). expected_spend
    is the Gamma-Gamma expectation when that model is usable, else the client's own mean purchase
    (net of returns). clv = Σ over months m of expected purchases in month m × expected_spend ×
    margin / (1 + discount)^(m/12).
    """
    from saas.analytics import backtest, btyd, clv, selection
    from saas.core import clock

    purchase_models = list(PURCHASE_MODELS) if model in ("auto", "all") else [m for m in (model,) if m != "gamma-gamma"]
    with_spend = model in ("auto", "all", "gamma-gamma")
    if predict_path is not None and not purchase_models:
        raise click.UsageError("--predict needs a purchase model: pareto-nbd, bg-nbd or mbg-nbd (or auto)")
    cal_end, hold_end = _day(calibration_end, "--calibration-end"), _day(holdout_end, "--holdout-end")
    if hold_end is not None:
        if cal_end is None:
            raise click.UsageError("--holdout-end needs --calibration-end (the end of the history to fit)")
        if hold_end <= cal_end:
            raise click.BadParameter("must be after --calibration-end", param_hint="--holdout-end")
    today = clock.today().toordinal()
    for day, option in ((cal_end, "--calibration-end"), (hold_end, "--holdout-end")):
        if day is not None and day > today:
            raise click.BadParameter(f"{_iso(day)} is after today ({_iso(today)})", param_hint=option)
    if horizon is None:
        horizon = 52.0 if unit == "week" else 365.0
    step = float(UNITS[unit])

    t = read_rows(csv_file)
    days, amounts = t.days, t.amounts
    _refuse(t, np.flatnonzero(days > today), f"dated after today ({_iso(today)})")
    end = int(days.max()) if cal_end is None else cal_end
    if not (days <= end).any():
        raise click.ClickException(
            f"no transactions on or before the calibration end {_iso(end)} (the first is on {_iso(days.min())})")
    last = end if hold_end is None else hold_end
    _refuse(t, np.flatnonzero(days > last),
            f"dated after the {'holdout' if hold_end is not None else 'calibration'} end ({_iso(last)})")
    if returns == "error":
        _refuse(t, np.flatnonzero(amounts < 0), "with a negative amount (--returns error)")
    if not (amounts[days <= end] > 0).any():
        raise click.ClickException(f"no purchases up to {_iso(end)}: every amount is zero or negative "
                                   "(purchases are positive amounts)")

    labels, codes = np.unique(np.asarray(t.ids, dtype=object).astype(str), return_inverse=True)
    mode = "ignore" if returns == "ignore" else "returns"
    data = backtest.split(codes.ravel(), days, amounts, end, end if hold_end is None else hold_end, step, mode)
    client, x, t_x, T, m_x = data.client, data.x, data.t_x, data.T, data.m_x

    report: dict = {
        "unit": unit,
        "calibration_end": _iso(end),
        "clients": len(client),
        "repeat_buyers": int((x > 0).sum()),
        "transactions": int((x + 1).sum()),  # purchase days per client, up to the calibration end
        "rows": len(t.ids),
        "returns": {"mode": returns, "rows": data.stats["return_rows"], "amount": data.stats["returned"],
                    "refunded_in_full": data.stats["refunded_in_full"],
                    "unmatched_amount": data.stats["unmatched_returns"]},
        "zero_amount_rows": data.stats["zero_rows"],
    }
    problem = selection.data_problem(x, t_x, T) if purchase_models else None
    if problem is not None:
        raise click.ClickException(f"{selection.reason_text(problem)} "
                                   f"({len(client)} client{'s' if len(client) != 1 else ''}, "
                                   f"{report['repeat_buyers']} with a repeat purchase, up to {_iso(end)})")

    (gx, gt_x, gT), weights, inverse = btyd.compress(x, t_x, T)
    fits = selection.fit_candidates(gx, gt_x, gT, weights, tuple(purchase_models)) if purchase_models else []
    errors: dict[str, float] = {}
    if hold_end is not None:
        for f in fits:
            if f.usable:
                predicted = selection.expected(f, data.holdout_length, gx, gt_x, gT)[inverse]
                errors[f.model] = backtest.holdout_error(x, predicted, data.holdout)
    chosen, why = selection.choose(fits, errors or None) if fits else (None, "")
    report["models"] = {f.model: _fit_report(f, errors.get(f.model)) for f in fits}

    spend_fit = None
    if with_spend:
        spend_fit, message, correlation = selection.fit_spend(x, m_x)
        message = selection.reason_text(message)
        entry = _fit_report(spend_fit) if spend_fit is not None else {"usable": False, "reason": message}
        entry["frequency_spend_correlation"] = _number(correlation)
        entry["warning"] = message if spend_fit is not None else None
        report["models"]["gamma-gamma"] = entry
    if fits:
        report["chosen"] = {"model": chosen.model if chosen else None, "why": why}

    if hold_end is not None and chosen is not None:
        predicted = selection.expected(chosen, data.holdout_length, gx, gt_x, gT)[inverse]
        report["backtest"] = {"model": chosen.model, "calibration_end": _iso(end), "holdout_end": _iso(hold_end),
                              "holdout_length": data.holdout_length, "errors": errors,
                              "holdout_new_clients": data.stats["holdout_new_clients"],
                              **backtest.compare(x, predicted, data.holdout)}

    if chosen is None and fits:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
        raise click.ClickException(why)
    if predict_path is not None:
        if chosen is None:  # not reached: --predict needs a purchase model, and none usable raised above
            raise click.ClickException(why)
        if spend_fit is not None:
            spend = np.asarray(btyd.gamma_gamma_expected(spend_fit.params, x, m_x), dtype=float)
            spend_model = "gamma-gamma"
        else:  # the client's own mean purchase, net of returns
            spend = data.spend / (x + 1)
            spend_model = "client-mean"
        grouped = (gx, gt_x, gT)
        alive = selection.p_alive(chosen, *grouped)[inverse]
        expected = selection.expected(chosen, horizon, *grouped)[inverse]
        values = clv.discounted_clv(lambda h: selection.expected(chosen, h, *grouped)[inverse], spend,
                                    horizon_months, discount, margin, unit_days=step)
        _write_predictions(predict_path, labels[client], x, t_x, T, alive, expected, spend, values)
        report["predictions"] = {"file": str(predict_path), "horizon": horizon, "purchase_model": chosen.model,
                                 "spend_model": spend_model,
                                 "clv": {"months": horizon_months, "annual_discount": discount, "margin": margin}}
    click.echo(json.dumps(report, indent=2, ensure_ascii=False))


def _write_predictions(path: Path, client_ids: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
                       alive: np.ndarray, expected: np.ndarray, spend: np.ndarray, values: np.ndarray) -> None:
    try:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["client_id", "x", "t_x", "T", "p_alive", "expected_purchases", "expected_spend", "clv"])
            writer.writerows(zip(client_ids.tolist(), x.astype(int).tolist(), map(_fmt, t_x.tolist()),
                                 map(_fmt, T.tolist()), map(_fmt, alive.tolist()), map(_fmt, expected.tolist()),
                                 map(_fmt, spend.tolist()), map(_fmt, values.tolist()), strict=True))
    except OSError as exc:
        raise click.ClickException(f"{path}: {exc.strerror}") from None
