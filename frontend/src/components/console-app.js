// The console's live page: the service's figures from the `metrics` stream as numbers and
// charts, the ER-screen presence alarms, and ingestion health per region. Re-renders on every
// point (once a second) and every second (ages).
import { html, nothing } from "lit";

import { chartsOf, formatDuration, presenceRows, regionRows } from "../console-figures.js";
import { formatClock, regionName, t } from "../i18n.js";
import { formatFigure } from "./metric-chart.js";
import { icon } from "./icons.js";
import { LightElement } from "./light-element.js";
import "./metric-chart.js";

const QUIET_MS = 5_000; // no point for this long: the figures on screen are old

export class ConsoleApp extends LightElement {
  static properties = { history: { attribute: false } };

  constructor() {
    super();
    this.history = null;
    this._onChange = () => this.requestUpdate();
  }

  connectedCallback() {
    super.connectedCallback();
    this._timer = setInterval(this._onChange, 1000);
  }

  disconnectedCallback() {
    super.disconnectedCallback();
    clearInterval(this._timer);
  }

  willUpdate(changed) {
    if (changed.has("history")) {
      changed.get("history")?.removeEventListener("change", this._onChange);
      this.history?.addEventListener("change", this._onChange);
    }
  }

  /** A section missing from the newest report (its source was out of reach) shows its last
   * known value, saying how old it is. */
  _sectionAge(name, latest) {
    const [section, at] = this.history?.latestSection(name) ?? [null, null];
    if (!section || !latest || at === latest.at) return nothing;
    return html`<p class="section-old" role="status" data-testid=${`section-old-${name}`}>${icon("warning")} ${t(`console.section_old.${name}`, { time: formatClock(at) })}</p>`;
  }

  get _presenceSection() {
    return this.history?.latestSection("presence")[0] ?? null;
  }

  render() {
    const latest = this.history?.latest ?? null;
    const now = Date.now();
    const quiet = !latest || now - latest.at > QUIET_MS;
    return html`<div class="console-live">
      <h1>${t("console.title")}</h1>
      <p class="figures-age ${quiet ? "is-old" : ""}" role="status" data-testid="figures-age">
        ${latest ? t("console.figures_at", { time: formatClock(latest.at) }) : t("console.waiting")}
        ${latest && quiet ? html`<strong>${icon("warning")} ${t("console.figures_old")}</strong>` : nothing}
      </p>
      ${this._summary(latest)}
      ${this._sectionAge("presence", latest)}
      ${this._alarms(this._presenceSection, now)}
      <section class="console-section" aria-labelledby="charts-title">
        <h2 id="charts-title">${t("console.charts")}</h2>
        <div class="chart-grid">
          ${this.history ? chartsOf(this.history).map((chart) => html`<weer-metric-chart .heading=${chart.heading} .testid=${chart.key} .xs=${this.history.xs()} .lines=${chart.lines.map((line) => ({ ...line, label: line.total === undefined ? line.label : `${line.label} (${t("console.in_window", { n: formatFigure(line.total) })})` }))}></weer-metric-chart>`) : nothing}
        </div>
      </section>
      ${this._presence(this._presenceSection, now)}
      ${this._sectionAge("ingestion_regions", latest)}
      ${this._ingestion(this.history?.latestSection("ingestion_regions")[0], now)}
    </div>`;
  }

  _summary(latest) {
    const roles = latest?.connections?.by_role ?? {};
    const alarms = this._presenceSection?.alarms ?? 0;
    const tile = (testid, label, value, unit = "") => html`<div class="tile ${testid === "alarm-count" && alarms > 0 ? "is-alarm" : ""}" data-testid=${`tile-${testid}`}>
      <span class="tile-label">${testid === "alarm-count" && alarms > 0 ? html`${icon("warning")} ` : nothing}${label}</span>
      <strong class="tile-value" data-testid=${testid}>${latest ? formatFigure(value ?? 0) : "—"}</strong>${unit ? html`<span class="tile-unit">${unit}</span>` : nothing}
    </div>`;
    return html`<section class="tiles" aria-label=${t("console.summary")}>
      ${tile("connections-total", t("console.figure.connections_total"), latest?.connections?.total)}
      ${["ambulance", "hospital", "admin"].map((role) => tile(`connections-${role}`, t(`console.role.${role}`), roles[role]))}
      ${tile("processes", t("console.figure.processes"), latest ? Object.keys(latest.processes ?? {}).length : null)}
      ${tile("events-per-s", t("console.figure.events_published_per_s"), latest?.events_published_per_s, t("console.unit.per_s"))}
      ${tile("frames-per-s", t("console.figure.frames_sent_per_s"), latest?.frames_sent_per_s, t("console.unit.per_s"))}
      ${tile("alarm-count", t("console.figure.alarms"), this._presenceSection ? alarms : null)}
    </section>`;
  }

  _alarms(presence, now) {
    const alarms = presenceRows(presence, now).filter((row) => row.alarm);
    if (!alarms.length) {
      return html`<p class="presence-ok" data-testid="presence-ok">${icon("check")} ${presence ? t("console.presence.no_alarm") : t("console.presence.unknown")}</p>`;
    }
    return html`<section class="presence-alarms" role="alert" aria-labelledby="alarms-title" data-testid="presence-alarms">
      <h2 id="alarms-title">${icon("warning")} ${t("console.presence.alarm_title", { n: alarms.length })}</h2>
      <p>${t("console.presence.alarm_text")}</p>
      <ul>
        ${alarms.map((row) => html`<li data-testid=${`presence-alarm-${row.hpid}`}>
          <strong>${row.name}</strong> <span class="alarm-hpid">(${row.hpid})</span> —
          ${row.pending ? t("console.presence.pending", { n: row.pending }) : t("console.presence.recent", { time: formatClock(row.lastRequestAt) })}
          · ${row.noScreenSeconds === null ? t("console.presence.never") : t("console.presence.none_for", { duration: formatDuration(row.noScreenSeconds) })}
        </li>`)}
      </ul>
    </section>`;
  }

  _presence(presence, now) {
    const rows = presenceRows(presence, now);
    return html`<section class="console-section" aria-labelledby="presence-title">
      <h2 id="presence-title">${t("console.presence.title")} <span class="console-count" data-testid="with-screen">${presence?.with_screen ?? "—"}</span></h2>
      <p class="hint">${t("console.presence.explain")}</p>
      <table class="console-table" data-testid="presence">
        <thead><tr><th scope="col">${t("console.col.hospital")}</th><th scope="col" class="number">${t("console.col.screens")}</th><th scope="col">${t("console.col.state")}</th><th scope="col" class="number">${t("console.col.pending")}</th><th scope="col">${t("console.col.last_request")}</th></tr></thead>
        <tbody>
          ${rows.length ? rows.map((row) => html`<tr class=${row.alarm ? "alarm" : ""} data-testid=${`presence-${row.hpid}`}>
            <th scope="row">${row.name} <span class="hint">(${row.hpid})</span></th>
            <td class="number" data-testid=${`screens-${row.hpid}`}>${row.screens}</td>
            <td>${row.alarm ? html`<strong class="state-alarm">${icon("warning")} ${t("console.presence.state_alarm")}</strong>` : row.screens > 0 ? html`${icon("live")} ${t("console.presence.state_ok")}` : t("console.presence.state_none")}
              ${row.screens > 0 ? nothing : html`<span class="hint"> · ${row.noScreenSeconds === null ? t("console.presence.never") : t("console.presence.none_for", { duration: formatDuration(row.noScreenSeconds) })}</span>`}</td>
            <td class="number">${row.pending}</td>
            <td>${row.lastRequestAt ? formatClock(row.lastRequestAt) : "—"}</td>
          </tr>`) : html`<tr><td colspan="5">${t("console.presence.empty")}</td></tr>`}
        </tbody>
      </table>
    </section>`;
  }

  _ingestion(section, now) {
    const rows = regionRows(section, now);
    const used = section?.calls_used_today;
    const budget = section?.daily_call_budget;
    return html`<section class="console-section" aria-labelledby="ingestion-title">
      <h2 id="ingestion-title">${t("console.ingestion.title")}</h2>
      <p data-testid="call-budget">${section ? t("console.ingestion.budget", { used: formatFigure(used), budget: formatFigure(budget), left: formatFigure(section.calls_left_today) }) : t("console.ingestion.unknown")}</p>
      <table class="console-table" data-testid="ingestion">
        <thead><tr><th scope="col">${t("console.col.region")}</th><th scope="col">${t("console.col.state")}</th><th scope="col">${t("console.col.last_success")}</th><th scope="col">${t("console.col.newest")}</th><th scope="col">${t("console.col.oldest")}</th><th scope="col" class="number">${t("console.col.hospitals")}</th><th scope="col" class="number">${t("console.col.failures")}</th><th scope="col">${t("console.col.last_error")}</th></tr></thead>
        <tbody>
          ${rows.map((row) => html`<tr class=${row.stale ? "alarm" : ""} data-testid=${`region-${row.regionCode}`}>
            <th scope="row">${regionName(row.regionCode, row.name)}</th>
            <td>${row.stale ? html`<strong class="state-alarm">${icon("warning")} ${t("console.ingestion.stale")}</strong>` : html`${icon("check")} ${t("console.ingestion.fresh")}`}</td>
            <td>${row.lastSuccessAge === null ? t("console.ingestion.never") : t("console.ago", { duration: formatDuration(row.lastSuccessAge) })}</td>
            <td>${row.newestAge === null ? "—" : t("console.ago", { duration: formatDuration(row.newestAge) })}</td>
            <td>${row.oldestAge === null ? "—" : t("console.ago", { duration: formatDuration(row.oldestAge) })}</td>
            <td class="number">${row.hospitals}</td>
            <td class="number">${row.consecutiveFailures} / ${row.pollsFailed}</td>
            <td>${row.lastError || "—"}</td>
          </tr>`)}
        </tbody>
      </table>
    </section>`;
  }
}

customElements.define("weer-console-app", ConsoleApp);
