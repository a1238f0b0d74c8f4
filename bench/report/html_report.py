"""report.html for a run: REPORT.md's text as HTML plus interactive charts, in one file
that opens offline (no script, style or font fetched from anywhere).

Plotly draws the charts: hover shows a point's median, min–max, status and repetitions;
clicking a legend entry hides a model. Its script is inlined once per page, gzipped and
base64-encoded (about 2 MB instead of 4.8 MB), and unpacked by the browser's own
DecompressionStream. Claim charts are the PNGs bench/report/claim_charts.py drew, inlined as data
URIs. Every table sorts by a click on its header. The page promises its chart count in
`<body data-charts=N>` and sets `data-rendered` once drawn (the browser test checks both)."""

from __future__ import annotations

import base64
import gzip
import html
import json
import math
import re
from functools import lru_cache
from pathlib import Path

import markdown

from bench.analysis.summary import models_in_order
from bench.plan.scenarios import SCENARIOS
from bench.analysis import headline
from bench.report import charts, plots
from bench.report.figure_parts import thousands
from bench.report.styles import model_style
from bench.report.view import RunView
from bench.store import status
from bench.store.columns import Column, column

REPORT_HTML = "report.html"
HOLLOW = status.HOLLOW


@lru_cache(maxsize=1)
def plotly_bundle() -> str:
    """Plotly's script, gzipped and base64-encoded (cached: it does not change)."""
    from plotly.offline import get_plotlyjs

    return base64.b64encode(gzip.compress(get_plotlyjs().encode(), 9, mtime=0)).decode()


def _trace(rows, model: str, models: list[str], axis: str, scale: float, column: str) -> dict:
    style = model_style(model, models)
    rows = rows.sort_values(axis)
    finite = rows["median"].notna()
    rows = rows[finite]
    hollow = [s in HOLLOW for s in rows["status"]]
    text = [f"{model}<br>{axis} {x:g}: {m * scale:,.4g} (min {lo * scale:,.4g}, max "
            f"{hi * scale:,.4g})<br>{int(n)} repetition(s), status {st}"
            + (", client saturated" if sat else "")
            for x, m, lo, hi, n, st, sat in zip(rows[axis], rows["median"], rows["low"],
                                                rows["high"], rows["n"], rows["status"],
                                                rows["client_saturated"])]
    return {
        "type": "scatter", "mode": "lines+markers", "name": model,
        "legendgroup": model, "x": [float(v) for v in rows[axis]],
        "y": [float(v) * scale for v in rows["median"]],
        "error_y": {"type": "data", "symmetric": False,
                    "array": [float(h - m) * scale for h, m in zip(rows["high"], rows["median"])],
                    "arrayminus": [float(m - lo) * scale
                                   for m, lo in zip(rows["median"], rows["low"])],
                    "thickness": 1, "width": 3},
        "line": {"color": style.colour, "dash": style.plotly_dash, "width": 2},
        "marker": {"color": ["white" if h else style.colour for h in hollow],
                   "symbol": style.plotly_marker, "size": 8,
                   "line": {"color": style.colour, "width": 1.5}},
        "text": text, "hoverinfo": "text",
    }


def line_chart(data, scenario: str, metric: Column, models: list[str],
               axis: str = "connections") -> dict | None:
    """One plotly figure: a metric's points (RunView.points) against the scenario's axis,
    a trace per model."""
    if data.empty or data["median"].isna().all():
        return None
    unit, label = plots.unit_scale(metric, data["high"])
    traces = [_trace(data[data["model"] == m], m, models, axis, metric.scale * unit,
                     metric.name) for m in models if (data["model"] == m).any()]
    values = sorted(float(v) for v in data[axis].unique())
    xaxis = {"title": {"text": plots.AXIS_TITLES.get(axis, axis)}, "tickvals": values,
             "type": "linear" if axis == "rate_fraction" else "log"}
    return {"data": traces, "layout": {
        "title": {"text": f"{metric.title} — {scenario}", "font": {"size": 14}},
        "xaxis": xaxis, "yaxis": {"title": {"text": label}, **_y_axis(
            metric.log, [*(data["low"] * metric.scale * unit),
                         *(data["high"] * metric.scale * unit)])},
        "hovermode": "closest", "height": 470, "margin": {"t": 40, "r": 10},
        "legend": {"title": {"text": "click to hide:"}, "orientation": "h", "y": -0.22}}}


def _y_axis(log: bool, values=()) -> dict:
    """Log axes labelled at 1, 2 and 5 of each decade, in full (Plotly's own "D2" ticks
    write 20 as a small "2" next to "10", which reads as two); linear ones from zero."""
    if not log:
        return {"type": "linear", "rangemode": "tozero"}
    shown = [float(v) for v in values if v == v and float(v) > 0]
    if not shown:
        return {"type": "log", "dtick": "D2"}
    low, high = min(shown) / 1.5, max(shown) * 1.5
    ticks = [m * 10.0 ** e for e in range(math.floor(math.log10(low)),
                                          math.ceil(math.log10(high)) + 1)
             for m in (1, 2, 5) if low <= m * 10.0 ** e <= high]
    return {"type": "log", "tickvals": ticks, "ticktext": [thousands(t, None) for t in ticks]}


def dot_chart(view: RunView, name: str, scenario: str, count: int | None = None) -> dict | None:
    """Every model at one connection count, sorted, min–max whiskers."""
    rows = view.sweeps[view.sweeps["scenario"] == scenario]
    count = count or plots.one_x_count(rows)
    if count is None or name not in rows:
        return None
    data = view.points(name, scenario=scenario, connections=count).dropna(subset=["median"])
    data = data.sort_values("median", ascending=True)
    models = models_in_order(view.sweeps)
    metric = column(name)
    traces = []
    for _, row in data.iterrows():
        style = model_style(row["model"], models)
        hollow = row["status"] in HOLLOW
        traces.append({
            "type": "scatter", "mode": "markers", "name": row["model"],
            "x": [float(row["median"])], "y": [row["model"]],
            "error_x": {"type": "data", "symmetric": False,
                        "array": [float(row["high"] - row["median"])],
                        "arrayminus": [float(row["median"] - row["low"])]},
            "marker": {"color": "white" if hollow else style.colour, "size": 11,
                       "symbol": style.plotly_marker,
                       "line": {"color": style.colour, "width": 2}},
            "hovertemplate": f"{row['model']}: %{{x:,.4g}} (min {row['low']:,.4g}, max "
                             f"{row['high']:,.4g}), status {row['status']}<extra></extra>"})
    return {"data": traces, "layout": {
        "title": {"text": f"{metric.title}: every model at {count:,} connections ({scenario})",
                  "font": {"size": 14}},
        "xaxis": {"title": {"text": metric.axis},
                  **_y_axis(metric.log, (*data["low"], *data["high"]))},
        "yaxis": {"automargin": True}, "height": 120 + 28 * len(traces),
        "legend": {"traceorder": "reversed", "title": {"text": "click to hide"}},
        "margin": {"t": 40, "r": 10}, "showlegend": True}}


def _headline_charts(view: RunView, chart: charts.Chart) -> list[tuple[str, dict]]:
    """Service demand at the headline's count, interactive (the pipelined ranking is the
    pipelined sweep's chart below, with its band)."""
    figure = dot_chart(view, "server_cpu_us_per_req", "persistent",
                       headline.demand_count(view))
    return [("Service demand, every model", figure)] if figure else []


def _metric_charts(view: RunView, chart: charts.Chart) -> list[tuple[str, dict]]:
    metric, models = column(chart.metric), models_in_order(view.sweeps)
    figures = [line_chart(view.points(metric.name, scenario=scenario), scenario, metric,
                          models) for scenario in view.sweep_scenarios]
    return [(metric.title, f) for f in figures if f]


def _sweep_charts(view: RunView, chart: charts.Chart) -> list[tuple[str, dict]]:
    scenario = chart.scenarios[0]
    figures = [line_chart(view.points(name, scenario=scenario), scenario,
                          plots.sweep_metric(chart, name), view.models,
                          SCENARIOS[scenario].axis)
               for name in chart.metrics if name in view.frame]
    return [(f"Scenario {scenario}", f) for f in figures if f]


INTERACTIVE = ((charts.HEADLINE, _headline_charts), (charts.METRIC, _metric_charts),
               (charts.SWEEP, _sweep_charts))  # the page's order: the headline first


def interactive_charts(view: RunView) -> list[tuple[str, dict]]:
    """(section, figure) for every chart of the registry the page shows, by kind."""
    found = []
    for kind, figures in INTERACTIVE:
        for chart in charts.of_kind(kind):
            if plots.has_data(view, chart):
                found += figures(view, chart)
    return found


def small_png(path: Path) -> bytes:
    """The PNG with a 64-colour palette: a third of the bytes, the same chart to the eye."""
    import io

    from PIL import Image

    out = io.BytesIO()
    with Image.open(path) as image:
        image.convert("RGB").quantize(colors=64).save(out, format="PNG", optimize=True)
    return out.getvalue()


def _inline_images(body: str, run_dir: Path) -> str:
    """Claim charts as data URIs; the static metric PNGs are replaced by the interactive
    charts (dropped here) so the page needs no file beside it."""
    kept = tuple(f"charts/{c.id}.png" for c in charts.CHARTS
                 if c.section in ("answer", "load"))

    def swap(match):
        src = match.group(2)
        path = run_dir / src
        if (src.startswith("charts/claim") or src in kept) and path.is_file():
            data = base64.b64encode(small_png(path)).decode()
            return f'<img alt="{match.group(1)}" src="data:image/png;base64,{data}" />'
        return ""
    return re.sub(r'<img alt="([^"]*)" src="([^"]+)" ?/?>', swap, body)


STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI","Noto Sans","Noto Sans CJK SC",
"PingFang SC","Microsoft YaHei",sans-serif;margin:0 auto;max-width:1300px;
padding:0 18px 60px;color:#222}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px;display:block;overflow-x:auto}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left}
th{background:#f2f2f2;cursor:pointer;user-select:none;position:sticky;top:0}
th.sorted-asc::after{content:" ▲"} th.sorted-desc::after{content:" ▼"}
tr:nth-child(even) td{background:#fafafa}
code,pre{background:#f4f4f4;padding:1px 4px;border-radius:3px}
pre{padding:8px;overflow-x:auto}
img{max-width:100%;border:1px solid #eee}
.chart{min-height:300px;margin:10px 0 26px}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:6px 0;z-index:5;
font-size:13px}
nav a{margin-right:12px}
"""

SCRIPT = """
function sortTable(th){
  const table=th.closest('table'), body=table.tBodies[0]; if(!body) return;
  const index=[...th.parentNode.children].indexOf(th);
  const asc=!th.classList.contains('sorted-asc');
  table.querySelectorAll('th').forEach(h=>h.classList.remove('sorted-asc','sorted-desc'));
  th.classList.add(asc?'sorted-asc':'sorted-desc');
  const key=cell=>{const t=(cell?cell.textContent:'').trim();
    const n=parseFloat(t.replace(/,/g,'').replace(/^[^0-9.\\-]+/,''));
    return isNaN(n)?t.toLowerCase():n;};
  const rows=[...body.rows].sort((a,b)=>{const x=key(a.cells[index]),y=key(b.cells[index]);
    const r=(typeof x===typeof y)?(x<y?-1:x>y?1:0):(typeof x==='number'?-1:1);
    return asc?r:-r;});
  rows.forEach(r=>body.appendChild(r));
}
document.querySelectorAll('th').forEach(th=>th.addEventListener('click',()=>sortTable(th)));
async function loadPlotly(){
  const packed=document.getElementById('plotly-gz').textContent.trim();
  const bytes=Uint8Array.from(atob(packed),c=>c.charCodeAt(0));
  const stream=new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  const source=await new Response(stream).text();
  (0,eval)(source);
}
async function drawCharts(){
  await loadPlotly();
  const divs=document.querySelectorAll('div.chart');
  let drawn=0;
  for(const div of divs){
    const fig=JSON.parse(div.nextElementSibling.textContent);
    await Plotly.newPlot(div,fig.data,fig.layout,{responsive:true,displaylogo:false});
    drawn+=1;
  }
  document.body.dataset.rendered=String(drawn);
}
drawCharts().catch(e=>{console.error('charts not drawn: '+e);
  document.body.dataset.rendered='error';});
"""


def _json_script(figure: dict) -> str:
    text = json.dumps(figure, allow_nan=False, default=float).replace("</", "<\\/")
    return f'<script type="application/json" class="figure">{text}</script>'


def _clean(value):
    """NaN/inf to None so the JSON is strict (JSON.parse rejects NaN)."""
    if isinstance(value, float) and value != value or value in (float("inf"), float("-inf")):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def render_html(view: RunView, report_markdown: str) -> str:
    run_dir = view.run_dir
    body = markdown.markdown(report_markdown, extensions=["tables", "fenced_code"])
    body = _inline_images(body, run_dir)
    figures = interactive_charts(view) if not view.frame.empty else []
    chart_html = ['<h2 id="interactive-charts">Interactive charts</h2>',
                  "<p>Hover a point for its median, min–max over repetitions and status; "
                  "click a legend entry to hide that model (double-click to show it alone). "
                  "Hollow markers: a repetition was refused, starved or failed.</p>"]
    section = None
    for title, figure in figures:
        if title != section:
            chart_html.append(f"<h3>{html.escape(title)}</h3>")
            section = title
        chart_html += ['<div class="chart"></div>', _json_script(_clean(figure))]
    body = body.replace('<h2>Charts</h2>', "\n".join(chart_html), 1) \
        if "<h2>Charts</h2>" in body else body + "\n".join(chart_html)
    title = html.escape(f"IO models benchmark — {run_dir.name}")
    nav = ('<nav><a href="#interactive-charts">charts</a><a href="#claims">claims</a>'
           '<a href="#flags">flags</a><a href="#placement">placement</a>'
           '<a href="#environment">environment</a>'
           '<a href="#tables">tables</a></nav>')
    body = (body.replace("<h2>Claims of the lecture notes</h2>",
                         '<h2 id="claims">Claims of the lecture notes</h2>')
            .replace("<h2>Flags</h2>", '<h2 id="flags">Flags</h2>')
            .replace("<h2>Placement</h2>", '<h2 id="placement">Placement</h2>')
            .replace("<h2>Environment</h2>", '<h2 id="environment">Environment</h2>')
            .replace("<h2>Tables</h2>", '<h2 id="tables">Tables</h2>'))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{title}</title><style>{STYLE}</style></head>\n"
            f'<body data-charts="{len(figures)}">{nav}\n{body}\n'
            f'<script type="application/octet-stream" id="plotly-gz">{plotly_bundle()}</script>\n'
            f"<script>{SCRIPT}</script></body></html>\n")


def write_html(view: RunView, report_markdown: str) -> Path:
    path = view.run_dir / REPORT_HTML
    path.write_text(render_html(view, report_markdown), encoding="utf-8")
    return path
