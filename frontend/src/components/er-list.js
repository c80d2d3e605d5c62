// The ranked, filtered ERs as rows (nearest first by default), PAGE rows at a time. The rows
// shown ask the board for their acceptance and messages, which only the detail API has (one
// request per hospital, fetched once, then kept current by the stream's events).
import { html, nothing } from "lit";
import { repeat } from "lit/directives/repeat.js";

import { MAX_HOSPITALS_PER_REQUEST } from "../clinical.js";
import { t } from "../i18n.js";
import { LightElement } from "./light-element.js";
import "./er-row.js";

const PAGE = 40;

export class ErList extends LightElement {
  static properties = {
    rows: { attribute: false },
    board: { attribute: false },
    selected: { attribute: false },
    category: { attribute: false },
    old: { type: Boolean },
    _limit: { state: true },
  };

  constructor() {
    super();
    this.rows = [];
    this.board = null;
    this.selected = [];
    this.category = null;
    this.old = false;
    this._limit = PAGE;
  }

  updated() {
    if (!this.old) this.board?.ensureDetails(this.rows.slice(0, this._limit).map((r) => r.hpid));
  }

  /** Show rows down to this hpid (tests and the map use it to bring a row into the list). */
  reveal(hpid) {
    const index = this.rows.findIndex((r) => r.hpid === hpid);
    if (index >= this._limit) this._limit = index + 1;
    this.updateComplete.then(() => this.querySelector(`[data-hpid="${hpid}"]`)?.scrollIntoView({ block: "nearest", behavior: "smooth" }));
  }

  render() {
    const total = this.rows.length;
    const shown = this.rows.slice(0, this._limit);
    const full = this.selected.length >= MAX_HOSPITALS_PER_REQUEST;
    return html`<section class="er-list" data-testid="er-list" aria-label=${t("list.title")}>
      <p class="er-list__count" data-testid="er-count" aria-live="polite">${t("list.count", { shown: shown.length, total })}</p>
      ${total === 0 ? html`<p class="empty" data-testid="er-list-empty">${t("list.empty")}</p>` : nothing}
      ${repeat(
        shown,
        (row) => row.hpid,
        (row) => html`<weer-er-row .row=${row} .board=${this.board} .category=${this.category}
            ?selected=${this.selected.includes(row.hpid)} ?selectable=${!full} ?old=${this.old}></weer-er-row>`,
      )}
      ${total > shown.length
        ? html`<button type="button" class="button button--wide" data-testid="er-list-more" @click=${() => (this._limit += PAGE)}>
            ${t("list.more", { n: Math.min(PAGE, total - shown.length) })}</button>`
        : nothing}
    </section>`;
  }
}

customElements.define("weer-er-list", ErList);
