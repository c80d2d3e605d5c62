// One chart of the console: uPlot lines over the last minutes, with every line's latest value
// written next to it (nothing is read off a curve alone). Lines differ by dash pattern as well
// as by colour. The plot itself is hidden from assistive tech: the figures beside it say it all.
//
//   <weer-metric-chart .heading=${"연결"} .xs=${[…unix s]} .lines=${[{label, values, unit?}]} testid="connections">
// `uplot` is the uPlot instance (tests read its data).
import { html } from "lit";
import uPlot from "uplot";

import { formatClock } from "../i18n.js";
import { LightElement } from "./light-element.js";

const STYLES = [
  { stroke: "#111111", dash: [] },
  { stroke: "#b91c1c", dash: [10, 5] },
  { stroke: "#0b57d0", dash: [2, 4] },
  { stroke: "#1b6e20", dash: [14, 4, 3, 4] },
  { stroke: "#6a1b9a", dash: [6, 3] },
  { stroke: "#8a5300", dash: [1, 3] },
];
const HEIGHT = 180;

export function lineStyle(index) {
  return STYLES[index % STYLES.length];
}

export function formatFigure(value) {
  if (value === null || value === undefined) return "—";
  return Number.isInteger(value) ? value.toLocaleString() : value.toLocaleString(undefined, { maximumFractionDigits: 1 });
}

export class MetricChart extends LightElement {
  static properties = {
    heading: { type: String },
    testid: { type: String },
    xs: { attribute: false },
    lines: { attribute: false },
  };

  constructor() {
    super();
    this.heading = "";
    this.testid = "";
    this.xs = [];
    this.lines = [];
    this.uplot = null;
    this._labels = "";
  }

  disconnectedCallback() {
    super.disconnectedCallback();
    this._resize?.disconnect();
    this.uplot?.destroy();
    this.uplot = null;
  }

  render() {
    return html`<figure class="metric-chart" data-testid=${`chart-${this.testid}`}>
      <figcaption><h3>${this.heading}</h3>
        <ul class="chart-figures">
          ${this.lines.map((line, i) => html`<li>
            <svg class="swatch" aria-hidden="true" width="28" height="10"><line x1="0" y1="5" x2="28" y2="5" stroke=${lineStyle(i).stroke} stroke-width="3" stroke-dasharray=${lineStyle(i).dash.join(" ")}></line></svg>
            <span class="figure-label">${line.label}</span>
            <strong class="figure-value" data-testid=${`chart-${this.testid}-${line.key ?? i}`}>${formatFigure(line.latest ?? line.values.at(-1))}</strong>${line.unit ? html` <span class="figure-unit">${line.unit}</span>` : ""}
          </li>`)}
        </ul>
      </figcaption>
      <div class="chart-plot" aria-hidden="true"></div>
    </figure>`;
  }

  updated() {
    const labels = this.lines.map((line) => line.label).join("\u0000");
    const data = [this.xs, ...this.lines.map((line) => line.values)];
    const target = this.querySelector(".chart-plot");
    if (!target) return;
    if (!this.uplot || labels !== this._labels) {
      this.uplot?.destroy();
      this._labels = labels;
      this.uplot = new uPlot(this._options(target.clientWidth || 400), data, target);
      this._resize?.disconnect();
      this._resize = new ResizeObserver(() => this.uplot?.setSize({ width: target.clientWidth || 400, height: HEIGHT }));
      this._resize.observe(target);
    } else {
      this.uplot.setData(data);
    }
  }

  _options(width) {
    return {
      width,
      height: HEIGHT,
      legend: { show: false },
      cursor: { show: false },
      scales: { x: { time: true }, y: { range: (_u, min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [
        { stroke: "#111", grid: { stroke: "#d0d0d0" }, font: "14px system-ui", space: 90, incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600], values: (_u, splits) => splits.map((s) => formatClock(s * 1000)) },
        { stroke: "#111", grid: { stroke: "#d0d0d0" }, font: "14px system-ui", size: 60 },
      ],
      series: [{}, ...this.lines.map((line, i) => ({ label: line.label, stroke: lineStyle(i).stroke, dash: lineStyle(i).dash, width: 2.5, points: { show: false }, spanGaps: false }))],
    };
  }
}

customElements.define("weer-metric-chart", MetricChart);
