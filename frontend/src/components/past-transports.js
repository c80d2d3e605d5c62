// This crew's earlier requests (GET /api/reservations, newest first), loaded when opened and
// again whenever one of its requests closes (`refreshKey` changes).
import { html, nothing } from "lit";

import { api } from "../api.js";
import { t, formatDateTime, categoryLabel } from "../i18n.js";
import { icon } from "./icons.js";
import { LightElement } from "./light-element.js";
import { crewState } from "./request-status.js";

const PAGE_SIZE = 50;

export class PastTransports extends LightElement {
  static properties = {
    refreshKey: { attribute: false },
    _open: { state: true },
    _items: { state: true },
    _error: { state: true },
    _loading: { state: true },
  };

  constructor() {
    super();
    this.refreshKey = 0;
    this._open = false;
    this._items = null;
    this._error = null;
    this._loading = false;
  }

  willUpdate(changed) {
    if (changed.has("refreshKey") && this._open) this._load();
  }

  async _load() {
    this._loading = true;
    try {
      const page = await api(`/api/reservations?page_size=${PAGE_SIZE}`);
      this._items = page.results;
      this._error = null;
    } catch (error) {
      this._error = error.message;
    } finally {
      this._loading = false;
    }
  }

  _toggle(event) {
    this._open = event.target.open;
    if (this._open) this._load();
  }

  render() {
    return html`<details class="past" data-testid="past-transports" @toggle=${this._toggle}>
      <summary class="button button--quiet" data-testid="past-transports-toggle">${icon("history")}${t("past.title")}</summary>
      ${this._loading && !this._items ? html`<p class="muted">${t("past.loading")}</p>` : nothing}
      ${this._error ? html`<p class="notice notice--warning" data-testid="past-error">${icon("warning")}${this._error}</p>` : nothing}
      ${this._items && !this._items.length ? html`<p class="muted">${t("past.empty")}</p>` : nothing}
      ${this._items?.length
        ? html`<table class="past__table" data-testid="past-table">
            <thead><tr><th>${t("past.when")}</th><th>${t("past.hospital")}</th><th>${t("past.status")}</th><th>${t("past.patient")}</th></tr></thead>
            <tbody>${this._items.map((r) => {
              const state = crewState(r);
              return html`<tr data-testid=${`past-row-${r.id}`} data-status=${state}>
                <td>${formatDateTime(Date.parse(r.created_at))}</td>
                <td>${r.hospital_name}</td>
                <td><span class="state state--${state}">${t(`request.state.${state}`)}</span>
                  ${r.decline_reason ? html`<span class="muted small">${t(`decline.${r.decline_reason}`, {}, r.decline_reason)}</span>` : nothing}</td>
                <td>${r.condition?.pre_ktas ? html`<span class="ktas ktas--${r.condition.pre_ktas}">KTAS ${r.condition.pre_ktas}</span> ` : nothing}
                  ${r.condition?.chief_complaint ?? ""}
                  ${r.condition?.suspected_category ? html`<span class="muted small">${categoryLabel(r.condition.suspected_category)}</span>` : nothing}</td>
              </tr>`;
            })}</tbody>
          </table>`
        : nothing}
    </details>`;
  }
}

customElements.define("weer-past-transports", PastTransports);
