"""Inline SVG charts for the report: line charts (over shares, or over dates), table-cell
bars, dependence charts, and the heat-map colours. No scripts, no external references: every
chart is an SVG string (`markupsafe.Markup`) that the template pastes in as is; text in it is
escaped here.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from markupsafe import Markup, escape

COLORS: dict[str, str] = {"lightgbm": "#1f5fbf", "logistic": "#8a63d2", "rules": "#d9730d",
                          "random": "#8c8c8c"}


def as_float(v: Any) -> float | None:
    """`v` as a finite float, else None (missing, text, NaN, inf)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def pretty(value: Any) -> str:
    """A category code for humans: "financial_services" -> "financial services"."""
    special = {"c_level": "C-level", "vp": "VP", "senior_ic": "Senior individual contributor"}
    s = special.get(str(value), str(value).replace("_", " "))
    return s[:1].upper() + s[1:]


def nice_max(v: float) -> float:
    """Round up to 1, 2, 2.5 or 5 x 10^k."""
    if v <= 0 or not math.isfinite(v):
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * exp + 1e-12:
            return m * exp
    return 10 * exp  # pragma: no cover


def ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """n + 1 evenly spaced values from lo to hi."""
    return [lo + (hi - lo) * i / n for i in range(n + 1)]


def nice_ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    """Round tick values within [lo, hi], about n intervals."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw - 1e-12)
    first = math.ceil(lo / step - 1e-9) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def tick_label(v: float, percent: bool, span: float) -> str:
    """An axis label: "12%" (percent), "1.5k", "2M", else 3 significant digits."""
    if percent:
        digits = 0 if span >= 0.1 else 1
        return f"{100 * v:.{digits}f}%"
    if abs(v) >= 1e6:
        return f"{v / 1e6:g}M"
    if abs(v) >= 1e3:
        return f"{v / 1e3:g}k"
    return f"{v:.3g}"


@dataclass(frozen=True)
class Series:
    """One line of `line_chart`: points, colour, optional dash and per-point tooltips."""

    name: str
    xs: Sequence[float]
    ys: Sequence[float]
    color: str
    dash: str = ""
    markers: bool = True
    tips: Sequence[str] | None = None


def line_chart(series: Sequence[Series], *, title: str, x_label: str, y_label: str,
               x_max: float = 1.0, y_max: float = 1.0, diagonal: bool = False,
               percent: bool = True, width: int = 480, height: int = 340,
               css_class: str = "chart") -> Markup:
    """An inline SVG line chart (axes from 0) with optional y = x reference line."""
    ml, mr, mt, mb = 62, 14, 14, 48
    pw, ph = width - ml - mr, height - mt - mb

    def sx(x: float) -> float:
        return ml + pw * min(max(x / x_max, 0), 1)

    def sy(y: float) -> float:
        return mt + ph * (1 - min(max(y / y_max, 0), 1))

    out = [f'<svg class="{css_class}" viewBox="0 0 {width} {height}" width="{width}" '
           f'height="{height}" role="img" aria-label="{escape(title)}">',
           f"<title>{escape(title)}</title>"]
    for t in ticks(0, x_max):
        out.append(f'<line x1="{sx(t):.1f}" y1="{mt}" x2="{sx(t):.1f}" y2="{mt + ph}" class="grid"/>')
        out.append(f'<text x="{sx(t):.1f}" y="{mt + ph + 16}" text-anchor="middle" class="tick">'
                   f"{tick_label(t, percent, x_max)}</text>")
    for t in ticks(0, y_max):
        out.append(f'<line x1="{ml}" y1="{sy(t):.1f}" x2="{ml + pw}" y2="{sy(t):.1f}" class="grid"/>')
        out.append(f'<text x="{ml - 6}" y="{sy(t) + 4:.1f}" text-anchor="end" class="tick">'
                   f"{tick_label(t, percent, y_max)}</text>")
    out.append(f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" class="frame"/>')
    if diagonal:
        end = min(x_max, y_max)
        out.append(f'<line x1="{sx(0):.1f}" y1="{sy(0):.1f}" x2="{sx(end):.1f}" y2="{sy(end):.1f}" '
                   f'stroke="{COLORS["random"]}" stroke-dasharray="4 4" stroke-width="1.5"/>')
    for s in series:
        pts = [(x, y) for x, y in zip(s.xs, s.ys, strict=True)
               if as_float(x) is not None and as_float(y) is not None]
        if not pts:
            continue
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        out.append(f'<polyline points="{path}" fill="none" stroke="{s.color}" stroke-width="2.2"'
                   f'{dash}><title>{escape(s.name)}</title></polyline>')
        if s.markers:
            tips = list(s.tips) if s.tips is not None else [""] * len(pts)
            for (x, y), tip in zip(pts, tips, strict=False):
                out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{s.color}">'
                           f"<title>{escape(s.name)}: {escape(tip)}</title></circle>")
    out.append(f'<text x="{ml + pw / 2:.1f}" y="{height - 8}" text-anchor="middle" class="axis">'
               f"{escape(x_label)}</text>")
    out.append(f'<text transform="translate(14,{mt + ph / 2:.1f}) rotate(-90)" '
               f'text-anchor="middle" class="axis">{escape(y_label)}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def _day(value: Any) -> int | None:
    """An ISO date (or date) as a day number; None if it is not one."""
    try:
        return dt.date.fromisoformat(str(value)[:10]).toordinal()
    except ValueError:
        return None


def _axis(lo: float, hi: float, n: int = 4) -> list[float]:
    """Round tick values spanning [lo, hi] (the first at or below lo, the last at or above hi)."""
    if hi - lo < 1e-9:
        lo, hi = lo - 0.05, hi + 0.05
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw - 1e-12)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [round(k * step, 10) for k in range(first, last + 1)]


def date_chart(series: Sequence[Series], *, title: str, y_label: str, x_label: str = "",
               digits: int = 2, width: int = 560, height: int = 300,
               css_class: str = "chart") -> Markup | None:
    """An inline SVG line chart over time: each series' `xs` are ISO dates ("2025-03-01"),
    its `ys` plain numbers (e.g. ROC AUC); the y axis spans the data, not from 0. None if
    nothing to draw."""
    pts = []  # per series: (day, value, tooltip) of the points that have both
    for s in series:
        tips = list(s.tips) if s.tips is not None else [""] * len(s.xs)
        pts.append([(d, float(y), tip or f"{float(y):.{digits}f}")
                    for x, y, tip in zip(s.xs, s.ys, tips, strict=True)
                    if (d := _day(x)) is not None and as_float(y) is not None])
    days = sorted({d for p in pts for d, _, _ in p})
    values = [y for p in pts for _, y, _ in p]
    if not days:
        return None
    ml, mr, mt, mb = 52, 14, 14, 48
    pw, ph = width - ml - mr, height - mt - mb
    x_lo, x_hi = (days[0], days[-1]) if len(days) > 1 else (days[0] - 30, days[0] + 30)
    pad = max(0.01, 0.08 * (max(values) - min(values)))
    yt = _axis(min(values) - pad, max(values) + pad)

    def sx(d: float) -> float:
        return ml + 10 + (pw - 20) * (d - x_lo) / (x_hi - x_lo)

    def sy(y: float) -> float:
        return mt + ph * (1 - (y - yt[0]) / (yt[-1] - yt[0]))

    out = [f'<svg class="{css_class}" viewBox="0 0 {width} {height}" width="{width}" '
           f'height="{height}" role="img" aria-label="{escape(title)}">',
           f"<title>{escape(title)}</title>"]
    for t in yt:
        out.append(f'<line x1="{ml}" y1="{sy(t):.1f}" x2="{ml + pw}" y2="{sy(t):.1f}" class="grid"/>')
        out.append(f'<text x="{ml - 6}" y="{sy(t) + 4:.1f}" text-anchor="end" class="tick">'
                   f"{t:.{digits}f}</text>")
    every = max(1, math.ceil(len(days) / 8))
    for d in days[::every]:
        date = dt.date.fromordinal(d)
        label = date.strftime("%b %Y") if date.day == 1 else date.isoformat()
        out.append(f'<line x1="{sx(d):.1f}" y1="{mt}" x2="{sx(d):.1f}" y2="{mt + ph}" class="grid"/>')
        out.append(f'<text x="{sx(d):.1f}" y="{mt + ph + 16}" text-anchor="middle" class="tick">'
                   f"{label}</text>")
    out.append(f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" class="frame"/>')
    for s, p in zip(series, pts, strict=True):
        if not p:
            continue
        dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        path = " ".join(f"{sx(d):.1f},{sy(y):.1f}" for d, y, _ in p)
        out.append(f'<polyline points="{path}" fill="none" stroke="{s.color}" stroke-width="2.2"'
                   f'{dash}><title>{escape(s.name)}</title></polyline>')
        for d, y, tip in p:
            out.append(f'<circle cx="{sx(d):.1f}" cy="{sy(y):.1f}" r="3" fill="{s.color}">'
                       f"<title>{escape(s.name)}: {escape(tip)}</title></circle>")
    if x_label:
        out.append(f'<text x="{ml + pw / 2:.1f}" y="{height - 8}" text-anchor="middle" '
                   f'class="axis">{escape(x_label)}</text>')
    out.append(f'<text transform="translate(14,{mt + ph / 2:.1f}) rotate(-90)" '
               f'text-anchor="middle" class="axis">{escape(y_label)}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def bar(value: float, max_value: float, color: str, width: int = 160, height: int = 14) -> Markup:
    """A small horizontal bar (inline SVG) for a table cell."""
    w = 0.0 if max_value <= 0 else width * min(max(value / max_value, 0), 1)
    return Markup(f'<svg class="bar" viewBox="0 0 {width} {height}" width="{width}" '
                  f'height="{height}" aria-hidden="true">'
                  f'<rect x="0" y="1" width="{width}" height="{height - 2}" fill="#eef1f5"/>'
                  f'<rect x="0" y="1" width="{w:.1f}" height="{height - 2}" fill="{color}"/></svg>')


MAX_BARS = 8  # categories drawn in a dependence chart (the most common ones)
_UNKNOWN = frozenset({"unknown", "nan", "none", "<na>", "", "other"})
_LEADING_NUMBER = re.compile(r"^\s*[<>≤≥~]?\s*\$?\s*(\d[\d,]*(?:\.\d+)?)")


def _is_unknown(label: str) -> bool:
    return label.strip().lower() in _UNKNOWN


def dependence_kind(values: pd.Series) -> str:
    """"numeric", "flag" (only 0 and 1) or "categorical", from the values alone: a value
    column is numeric when every value present reads as a number (missing values do not make
    it categorical)."""
    present = values[values.notna()]
    if present.empty:
        return "categorical"
    num = pd.to_numeric(present, errors="coerce")
    if num.notna().all():
        return "flag" if set(num.unique()) <= {0.0, 1.0} else "numeric"
    return "categorical"


def category_order(means: pd.Series) -> list[str]:
    """Bars' order, from {category: mean contribution}: categories that all read as numbers
    or number ranges ("1-10", "11-50", "5001+") in numeric order, others by effect (highest
    first); "unknown"/"other" last."""
    labels = [str(c) for c in means.index]
    known = [c for c in labels if not _is_unknown(c)]
    rest = [c for c in labels if _is_unknown(c)]
    numbers = {c: _LEADING_NUMBER.match(c) for c in known}
    if known and all(numbers.values()):
        known.sort(key=lambda c: float(numbers[c][1].replace(",", "")))
    else:
        m = {str(k): float(v) for k, v in means.items()}
        known.sort(key=lambda c: -m[c])
    return known + rest


def category_labels(values: pd.Series, kind: str | None = None) -> pd.Series:
    """Per row, the category a bar chart files it under: missing -> "unknown", a flag's 0/1
    -> "no"/"yes" (index reset)."""
    kind = kind or dependence_kind(values)
    values = values.reset_index(drop=True)
    if kind == "flag":
        num = pd.to_numeric(values, errors="coerce")
        labels = num.map({0.0: "no", 1.0: "yes"}).astype(object)
        return labels.where(num.isin([0.0, 1.0]), values.astype(str))
    return values.astype(str).where(values.notna(), "unknown")


def category_table(values: pd.Series, contribution: pd.Series, kind: str | None = None) -> pd.DataFrame:
    """The bars of a dependence chart, in drawing order: index the category label (missing ->
    "unknown", a flag's 0/1 -> "no"/"yes"), columns mean contribution and size, for the
    `MAX_BARS` most common categories; a flag's no before yes, others in `category_order`."""
    kind = kind or dependence_kind(values)
    labels = category_labels(values, kind)
    contribution = pd.to_numeric(contribution, errors="coerce").reset_index(drop=True)
    g = pd.DataFrame({"v": labels, "c": contribution}).dropna().groupby("v")["c"].agg(["mean", "size"])
    g = g.sort_values("size", ascending=False, kind="stable").head(MAX_BARS)
    if g.empty:
        return g
    if kind == "flag" and set(g.index) == {"no", "yes"}:
        return g.loc[["no", "yes"]]
    return g.loc[category_order(g["mean"])]


def _tick_values(lo: float, hi: float, log: bool) -> list[float]:
    if not log:
        return nice_ticks(lo, hi, 4)
    out = [10.0 ** e for e in range(math.ceil(math.log10(lo) - 1e-9), math.floor(math.log10(hi) + 1e-9) + 1)]
    if len(out) > 5:
        out = out[:: math.ceil(len(out) / 5)]
    return out or [lo, hi]


def _bins(x: np.ndarray, y: np.ndarray) -> list[tuple[float, float, float, float, int]]:
    """(centre, first, last, mean contribution, rows) per bin: each distinct value when there
    are at most 12, else up to 10 quantile bins (centre: the median value in the bin)."""
    uniq = np.unique(x)
    if len(uniq) <= 12:
        return [(u, u, u, float(y[x == u].mean()), int((x == u).sum())) for u in uniq]
    edges = np.unique(np.quantile(x, np.linspace(0, 1, 11)))
    idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
    out = []
    for k in range(len(edges) - 1):
        sel = idx == k
        if sel.any():
            out.append((float(np.median(x[sel])), float(x[sel].min()), float(x[sel].max()),
                        float(y[sel].mean()), int(sel.sum())))
    return out


def _num(v: float) -> str:
    return tick_label(v, False, 1.0) if abs(v) >= 1e3 or v != round(v) else f"{v:,.0f}"


def dependence_chart(df: pd.DataFrame, title: str, *, kind: str | None = None, x_label: str = "",
                     width: int = 330, height: int = 236, max_points: int = 400) -> Markup | None:
    """value vs contribution. A numeric field (`kind` "numeric", else every value present is a
    number) is a line over its value: the leads as dots, the mean contribution per bin (each
    value when few, else deciles) as a line with points, on an ordered x axis (logarithmic
    when the values are positive, span two orders of magnitude or more and half of them lie in
    the first tenth of the range, e.g. revenue, employees); leads
    with no value are one point apart, labelled "unknown". A yes/no flag ("flag") is two bars,
    no then yes; a categorical field is bars for its `MAX_BARS` most common categories, in
    `category_order`. None if nothing to draw."""
    if df is None or df.empty or not {"value", "contribution"} <= set(df.columns):
        return None
    contrib = pd.to_numeric(df["contribution"], errors="coerce")
    values = df["value"]
    kind = kind or dependence_kind(values)
    numeric = pd.to_numeric(values, errors="coerce") if kind == "numeric" else None
    if numeric is not None and numeric[contrib.notna()].nunique() < 2:
        kind = "categorical"  # one value: nothing to draw a line over
    ml, mr, mt, mb = 46, 10, 10, 66
    pw, ph = width - ml - mr, height - mt - mb
    esc = escape(title)
    shape = "line" if kind == "numeric" else "bars"
    head = [f'<svg class="dep" data-kind="{shape}" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" aria-label="{esc}"><title>{esc}</title>']
    if kind == "numeric":
        ok = numeric.notna() & contrib.notna()
        missing = contrib[numeric.isna() & contrib.notna()]
        x = numeric[ok].to_numpy(float)
        y = contrib[ok].to_numpy(float)
        lo, hi = float(x.min()), float(x.max())
        # skewed and wide (revenue, employees): most leads would sit in the first tenth
        log = lo > 0 and hi / lo >= 100 and (float(np.median(x)) - lo) < 0.1 * (hi - lo)
        if not log:
            hi = float(np.quantile(x, 0.99))
            lo = min(lo, 0.0) if 0 <= lo < 0.5 * hi else lo
            if hi <= lo:
                hi = float(x.max())
            keep = x <= hi
            x, y = x[keep], y[keep]
        gap = 40 if len(missing) else 0
        pw_num = pw - gap
        ys = np.concatenate([y, missing.to_numpy(float)])
        ymax = float(np.max(np.abs(ys))) if len(ys) else 1.0
        ymax = nice_max(ymax * 1.05) if ymax > 0 else 1.0
        f = math.log10 if log else (lambda v: v)
        flo, fhi = f(lo), f(hi)

        def sx(v: float) -> float:
            return ml + pw_num * (f(v) - flo) / (fhi - flo)

        def sy(v: float) -> float:
            return mt + ph * (1 - (v + ymax) / (2 * ymax))

        out = head + [f'<rect x="{ml}" y="{mt}" width="{pw_num}" height="{ph}" class="frame"/>',
                      f'<line x1="{ml}" y1="{sy(0):.1f}" x2="{ml + pw_num}" y2="{sy(0):.1f}" class="zero"/>']
        order = np.argsort(x, kind="stable")
        step = max(1, math.ceil(len(order) / max_points))
        for i in order[::step]:
            out.append(f'<circle cx="{sx(x[i]):.1f}" cy="{sy(y[i]):.1f}" r="2" class="pt"/>')
        bins = _bins(x, y)
        path = " ".join(f"{sx(c):.1f},{sy(m):.1f}" for c, _, _, m, _ in bins)
        out.append(f'<polyline points="{path}" class="mean"/>')
        for c, first, last, m, n in bins:
            where = _num(first) if first == last else f"{_num(first)} to {_num(last)}"
            out.append(f'<circle cx="{sx(c):.1f}" cy="{sy(m):.1f}" r="3" class="bin"><title>'
                       f"{escape(where)}: {m:+.2f} on average ({n:,} leads)</title></circle>")
        for t in _tick_values(lo, hi, log):
            out.append(f'<text x="{sx(t):.1f}" y="{mt + ph + 14}" text-anchor="middle" class="tick">'
                       f"{tick_label(t, False, hi - lo)}</text>")
        if x_label:
            out.append(f'<text x="{ml + pw_num / 2:.1f}" y="{mt + ph + 32}" text-anchor="middle" '
                       f'class="axis">{escape(x_label)}{" (log scale)" if log else ""}</text>')
        if len(missing):
            cx = ml + pw_num + gap / 2 + 2
            m = float(missing.mean())
            out.append(f'<rect x="{ml + pw_num + 4}" y="{mt}" width="{gap - 4}" height="{ph}" class="frame"/>')
            out.append(f'<line x1="{ml + pw_num + 4}" y1="{sy(0):.1f}" x2="{ml + pw}" y2="{sy(0):.1f}" '
                       'class="zero"/>')
            out.append(f'<circle cx="{cx:.1f}" cy="{sy(m):.1f}" r="4" class="bin unknown"><title>'
                       f"no value: {m:+.2f} on average ({len(missing):,} leads)</title></circle>")
            out.append(f'<text x="{cx:.1f}" y="{mt + ph + 14}" text-anchor="middle" class="tick">'
                       "unknown</text>")
    else:
        g = category_table(values, contrib, kind)
        if g.empty:
            return None
        ymax = nice_max(float(g["mean"].abs().max()) * 1.05) if g["mean"].abs().max() > 0 else 1.0
        bw = pw / len(g)

        def sy(v: float) -> float:
            return mt + ph * (1 - (v + ymax) / (2 * ymax))

        out = head + [f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" class="frame"/>']
        for k, (cat, row) in enumerate(g.iterrows()):
            y0, y1 = sorted((sy(0), sy(row["mean"])))
            color = "#2e8b57" if row["mean"] >= 0 else "#c0392b"
            x0 = ml + k * bw + bw * 0.15
            out.append(f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{bw * 0.7:.1f}" '
                       f'height="{max(y1 - y0, 0.5):.1f}" fill="{color}"><title>'
                       f'{escape(pretty(cat))}: {row["mean"]:+.2f} ({int(row["size"])} leads)'
                       "</title></rect>")
            label = pretty(cat)
            label = label if len(label) <= 13 else label[:12] + "…"
            out.append(f'<text x="{x0 + bw * 0.35:.1f}" y="{mt + ph + 12}" text-anchor="end" '
                       f'transform="rotate(-35 {x0 + bw * 0.35:.1f} {mt + ph + 12})" '
                       f'class="tick">{escape(label)}</text>')
        out.append(f'<line x1="{ml}" y1="{sy(0):.1f}" x2="{ml + pw}" y2="{sy(0):.1f}" class="zero"/>')
    for t in (-ymax, 0.0, ymax):
        label = f"{t:+.2g}" if t else "0"
        out.append(f'<text x="{ml - 5}" y="{sy(t) + 4:.1f}" text-anchor="end" class="tick">'
                   f"{label}</text>")
    out.append("</svg>")
    return Markup("".join(out))


def heat_color(rate: float | None, vmax: float) -> tuple[str, str]:
    """Background and text colour for a heat-map cell: white -> deep blue."""
    if rate is None or vmax <= 0:
        return "#f4f4f4", "#333"
    t = min(max(rate / vmax, 0.0), 1.0) ** 0.7
    lo, hi = (247, 251, 255), (8, 48, 107)
    rgb = tuple(round(a + (b - a) * t) for a, b in zip(lo, hi, strict=True))
    return "#" + "".join(f"{c:02x}" for c in rgb), ("#fff" if t > 0.5 else "#1a1a1a")
