"""The report bundle: a ZIP of report.html, CSVs, summary.json and PNG plots.

Deterministic: the same sections give byte-identical files apart from the build time,
which appears only in summary.json (``built_at``) and the HTML header. Files are written
in sorted order with a fixed date, PNGs carry no metadata, JSON keys are sorted and
numbers are rounded to 6 digits.
"""

from __future__ import annotations

import base64
import html
import io
import json
import platform
import zipfile
from importlib import metadata

SCHEMA = "geppetto.report/1"
FIXED_DATE = (1980, 1, 1, 0, 0, 0)

METHODS = """
<h2>Methods</h2>
<p><b>Distances.</b> Per item, between the human answer distribution and the model's:
Jensen–Shannon distance (square root of the JS divergence, base 2; 0 = same, 1 = disjoint),
total variation (half the L1 distance), and Wasserstein-1 over the scale divided by the scale
range (ordinal items only; 1 − W1/range is OpinionQA's score). A run's distance is the mean
over the items both hold.</p>
<p><b>Intervals.</b> <i>Observed</i>: the mean distance with a bootstrap percentile interval
(whole participants, or each item's counts with its own effective n, and the items resampled;
a sampled model's samples too). It is biased upward near the floor. <i>Corrected</i>: a
bias-corrected estimate and an interval calibrated by simulation along the path
p(λ) = (1 − λ)·model + λ·people: samples of the humans' size are drawn at each λ and the
observed distance is inverted through the median and the outer quantiles of the simulated
distances (coverage checked by simulation in the test suite). Both intervals resample the
items too, so they cover the choice of items.</p>
<p><b>Population reference.</b> The expected mean distance of a model whose distribution is
the human one, measured against samples of the humans' size drawn from it (parametric
bootstrap), with its central band. A perfect model scores this, not 0. (The split-half
distance between two halves of the people is about twice as large and is not a bound.)</p>
<p><b>Scale placement.</b> A model's scale score is the mean of its expected keyed answers;
its percentile (ties count half) and z among the respondents' scale scores.</p>
<p><b>Third person.</b> Predicted population distributions against the human ones: mean over
items of 1 − W1/range and of 1 − JS distance (percentile interval over items resampled),
Pearson correlation of item means, share of samples that did not parse. Path <i>sampled</i>:
stated percentages parsed from generations. Path <i>exact</i>: for each option o,
E_o = Σ<sub>n=0..100</sub> n · P('n%' | prompt + ' o: '), P renormalised over the 101 numbers;
the predicted share of o is E_o / Σ E (the shares sum to 100 %).</p>
<p><b>Individuals.</b> Log-likelihood gain in bits per response of the predictions for each
person over the population: mean of log2 p_model(answer) − log2 p_population(answer), with
p_population the human answer distribution of the item without that person and one added to
every option's count (sampled predictions: share of parsed samples, one added to every
option). Interval: percentile bootstrap over people.</p>
<p><b>Likelihood.</b> NLL per participant = −Σ log p of the tokens inside their
&lt;&lt;…&gt;&gt; spans; pseudo-R² = 1 − LL_model / LL_random, LL_random = −Σ log(options),
interval over participants resampled; effects as Cohen's d = (mean_a − mean_b) /
sqrt((sd_a² + sd_b²)/2) on per-participant log-likelihood with the large-sample interval.</p>
<p><b>Π.</b> First principal component of scale scores standardised across models; sign: Π is
positive for more self-attribution of human-like experience (see the section for the rule
used); intervals resample items (and samples). π_i = Var_models(neutral) /
Var_models(human-simulation) of item means. Π against release date: least-squares slope per
year with a t interval. Base vs post-trained: paired differences.</p>
<p><b>The link.</b> Pearson correlation across models of first-person alignment (1 − JS) and
third-person accuracy (1 − JS), Fisher-z interval, n models.</p>
"""


def software_versions() -> dict[str, str]:
    """Versions of Python and the libraries that computed the numbers."""
    names = ("django", "numpy", "scipy", "pandas", "matplotlib")
    return {"python": platform.python_version(), **{n: metadata.version(n) for n in names}}


def _table_html(frame) -> str:
    return frame.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4f}", border=0)


def render_html(summary: dict, sections) -> str:
    """A self-contained report.html: tables, plots as data URIs, the methods."""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(summary['title'])}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
        "table{border-collapse:collapse;font-size:12px;margin:0.5em 0}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
        ".stale{background:#fdd;padding:0.5em}</style></head><body>",
        f"<h1>{html.escape(summary['title'])}</h1>",
        f"<p>Report {summary['report']}, built {html.escape(summary['built_at'])}; code "
        f"{html.escape(summary['code_version'])}; schema {SCHEMA}.</p>",
    ]
    if summary.get("stale"):
        parts.append("<p class='stale'>Stale: " + html.escape("; ".join(summary["stale"])) + "</p>")
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        for note in section.notes:
            parts.append(f"<p><i>{html.escape(note)}</i></p>")
        # Per-model tables first, then the plots, then the long per-item tables.
        detail = {n for n in section.tables if n.endswith(("_items", "_participants"))}
        for name in sorted(set(section.tables) - detail):
            parts.append(f"<h3>{html.escape(name)}</h3>{_table_html(section.tables[name])}")
        for name, data in sorted(section.plots.items()):
            uri = base64.b64encode(data).decode()
            parts.append(
                f"<p><img alt='{html.escape(name)}' src='data:image/png;base64,{uri}'></p>"
            )
        for name in sorted(detail):
            parts.append(f"<h3>{html.escape(name)}</h3>{_table_html(section.tables[name])}")
    parts.append(METHODS)
    parts.append("<h2>Parameters and inputs</h2><pre>")
    body = {k: summary[k] for k in ("params", "inputs", "software")}
    parts.append(html.escape(json.dumps(body, indent=2, sort_keys=True)))
    parts.append("</pre></body></html>\n")
    return "\n".join(parts)


def bundle(summary: dict, sections) -> bytes:
    """The ZIP bytes of a report (files in sorted order, fixed dates)."""
    files = {
        "summary.json": json.dumps(summary, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
        "report.html": render_html(summary, sections),
    }
    for section in sections:
        for name, frame in section.tables.items():
            files[f"csv/{section.name}/{name}.csv"] = frame.to_csv(index=False, lineterminator="\n")
        for name, data in section.plots.items():
            files[f"plots/{section.name}/{name}.png"] = data
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            data = files[name]
            z.writestr(info, data.encode() if isinstance(data, str) else data)
    return out.getvalue()
