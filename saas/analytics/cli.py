"""`saas analytics …`: the models for analysts, from a CSV of transactions."""
from __future__ import annotations

import csv
import json
import math
from datetime import date
from pathlib import Path

import click
import numpy as np

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


def read_transactions(path: Path) -> tuple[list[str], np.ndarray, np.ndarray, int]:
    """(client ids, day numbers, amounts, rows) from a CSV with client_id, date and amount columns.

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
        amounts = None
    if amounts is None or not np.isfinite(amounts).all():
        for k, text in enumerate(amount_texts):
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise click.ClickException(
                    f"{path}, line {lines[k]}: bad amount {text!r} (expected a decimal number such as 1250.50)")
    return ids, days, amounts, len(ids)


# ---- the command -----------------------------------------------------------------------------


def _number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _fmt(value: float) -> str:
    return f"{value:.10g}" if math.isfinite(value) else ""


@analytics.command("fit")
@click.argument("csv_file", metavar="FILE.csv", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--unit", type=click.Choice(list(UNITS)), default="week", show_default=True,
              help="Time unit of the model parameters (and of t_x, T and --horizon).")
@click.option("--calibration-end", metavar="YYYY-MM-DD", default=None,
              help="Only transactions up to this day count, and T runs to it. Default: the last date in the file.")
@click.option("--model", "model", type=click.Choice([*ALL_MODELS, "all"]), default="all", show_default=True)
@click.option("--predict", "predict_path", metavar="OUT.csv", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write per-client P(alive), expected purchases and expected spend.")
@click.option("--horizon", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Prediction horizon in --unit units. Default: 52 weeks or 365 days.")
def fit(csv_file: Path, unit: str, calibration_end: str | None, model: str, predict_path: Path | None,
        horizon: float | None) -> None:
    """Fit BTYD models to a CSV of transactions (client_id,date,amount) and print them as JSON.

    Parameters are in the published convention for the chosen unit (not rescaled). With
    --predict, P(alive) and expected purchases come from Pareto/NBD (else BG/NBD, else MBG/NBD);
    expected_spend is the Gamma-Gamma expected value of one transaction of the client.
    """
    from saas.analytics import btyd

    models = list(ALL_MODELS) if model == "all" else [model]
    if predict_path is not None and not set(models) & set(PURCHASE_MODELS):
        raise click.UsageError("--predict needs a purchase model: pareto-nbd, bg-nbd or mbg-nbd (or all)")
    if horizon is None:
        horizon = 52.0 if unit == "week" else 365.0

    ids, days, amounts, rows = read_transactions(csv_file)
    if calibration_end is None:
        end = int(days.max())
    else:
        try:
            end = _parse_date(calibration_end).toordinal()
        except ValueError:
            raise click.BadParameter(f"{calibration_end!r} is not a date YYYY-MM-DD",
                                     param_hint="--calibration-end") from None
    if not (days <= end).any():
        raise click.ClickException(
            f"no transactions on or before the calibration end {date.fromordinal(end).isoformat()} "
            f"(the first is on {date.fromordinal(int(days.min())).isoformat()})")

    labels, codes = np.unique(np.asarray(ids, dtype=object).astype(str), return_inverse=True)
    client, x, t_x, T, m_x = btyd.summarise(codes.ravel(), days, amounts, end, unit=float(UNITS[unit]))

    (gx, gt_x, gT), weights, inverse = btyd.compress(x, t_x, T)
    fits: dict[str, btyd.Fit] = {}
    out_models: dict[str, dict] = {}
    for name in models:
        if name == "gamma-gamma":
            usable = (x > 0) & (m_x > 0)
            if usable.sum() < 3:
                out_models[name] = {"error": "needs at least 3 clients with repeat purchases of positive value"}
                continue
            (sx, sm), sw, _ = btyd.compress(x[usable], m_x[usable])
            result = btyd.fit_gamma_gamma(sx, sm, sw)
        elif name == "pareto-nbd":
            result = btyd.fit_pareto(gx, gt_x, gT, weights)
        else:
            result = btyd.fit_bgnbd(gx, gt_x, gT, weights, modified=name == "mbg-nbd")
        fits[name] = result
        out_models[name] = {"params": {k: _number(v) for k, v in result.params.items()},
                            "log_likelihood": _number(result.log_likelihood), "converged": result.converged,
                            "clients": result.clients, "seconds": round(result.seconds, 3)}

    report = {
        "unit": unit,
        "calibration_end": date.fromordinal(end).isoformat(),
        "clients": len(client),
        "repeat_buyers": int((x > 0).sum()),
        "transactions": int((x + 1).sum()),  # distinct purchase days per client, up to the calibration end
        "rows": rows,
        "models": out_models,
    }
    if predict_path is not None:
        _write_predictions(predict_path, labels[client], x, t_x, T, m_x, fits, horizon, (gx, gt_x, gT), inverse)
        report["predictions"] = {"file": str(predict_path), "horizon": horizon,
                                 "purchase_model": next(m for m in PURCHASE_MODELS if m in fits),
                                 "spend_model": "gamma-gamma" if "gamma-gamma" in fits else None}
    click.echo(json.dumps(report, indent=2, ensure_ascii=False))


def _write_predictions(path: Path, client_ids: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
                       m_x: np.ndarray, fits: dict, horizon: float, grouped: tuple, inverse: np.ndarray) -> None:
    from saas.analytics import btyd

    purchase = next(m for m in PURCHASE_MODELS if m in fits)
    params = fits[purchase].params
    gx, gt_x, gT = grouped  # identical histories share one computation, expanded back by `inverse`
    with np.errstate(all="ignore"):
        if purchase == "pareto-nbd":
            alive = btyd.pareto_p_alive(params, gx, gt_x, gT)
            expected = btyd.pareto_expected(params, horizon, gx, gt_x, gT)
        else:
            modified = purchase == "mbg-nbd"
            alive = (btyd.mbgnbd_p_alive if modified else btyd.bgnbd_p_alive)(params, gx, gt_x, gT)
            expected = btyd.bgnbd_expected(params, horizon, gx, gt_x, gT, modified=modified)
        alive, expected = alive[inverse], expected[inverse]
        if "gamma-gamma" in fits:
            spend = np.asarray(btyd.gamma_gamma_expected(fits["gamma-gamma"].params, x, m_x), dtype=float)
            spend = np.broadcast_to(spend, x.shape)
        else:
            spend = np.full(x.shape, np.nan)
    try:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["client_id", "x", "t_x", "T", "p_alive", "expected_purchases", "expected_spend"])
            writer.writerows(zip(client_ids.tolist(), x.astype(int).tolist(), map(_fmt, t_x.tolist()),
                                 map(_fmt, T.tolist()), map(_fmt, alive.tolist()), map(_fmt, expected.tolist()),
                                 map(_fmt, spend.tolist()), strict=True))
    except OSError as exc:
        raise click.ClickException(f"{path}: {exc.strerror}") from None
