// The ER's active requests, live: waiting ones first (oldest first), then approved ones on
// their way. A request that closes (withdrawn, cancelled, expired, rejected, completed) stays
// CLOSED_VISIBLE_MS with its reason, then moves to the "recently closed" list. An empty queue
// only says "no requests" while the connection is live.
import { html, nothing } from "lit";
import { repeat } from "lit/directives/repeat.js";

import { t, formatClock } from "../i18n.js";
import { icon } from "./icons.js";
import { LightElement } from "./light-element.js";
import { erState } from "./request-card.js";
import "./request-card.js";

export const CLOSED_VISIBLE_MS = 60_000;
const RECENT_MS = 30 * 60_000;

export class RequestQueue extends LightElement {
  static properties = {
    book: { attribute: false },
    now: { attribute: false },
    busy: { attribute: false },
    live: { type: Boolean },
  };

  constructor() {
    super();
    this.book = null;
    this.now = Date.now();
    this.busy = new Set();
    this.live = false;
  }

  render() {
    const open = this.book.open();
    const waiting = open.filter((r) => r.status === "pending");
    const approved = open.filter((r) => r.status === "approved");
    const closed = this.book.recentlyClosed(RECENT_MS);
    const clientNow = this.book.now();
    const fresh = closed.filter((r) => clientNow - this.book.closedAt.get(r.id) < CLOSED_VISIBLE_MS);
    const older = closed.filter((r) => !fresh.includes(r));
    const cards = [...waiting, ...approved, ...fresh];
    return html`<section class="queue" data-testid="queue" aria-label=${t("queue.title")}>
      <h2>${icon("queue")}${t("queue.title")} <span class="queue__count" data-testid="queue-count">${t("queue.count", { waiting: waiting.length, approved: approved.length })}</span></h2>
      ${cards.length === 0
        ? html`<p class="queue__empty ${this.live ? "" : "queue__empty--unknown"}" data-testid="queue-empty" data-live=${this.live ? "true" : "false"}>
            ${this.live ? html`${icon("check", "icon icon--big")}${t("queue.empty_live")}` : html`${icon("warning", "icon icon--big")}${t("queue.empty_offline")}`}</p>`
        : nothing}
      <div class="queue__cards">
        ${repeat(
          cards,
          (r) => r.id,
          (r) => html`<weer-request-card .reservation=${r} .now=${this.now} ?busy=${this.busy.has(r.id)}></weer-request-card>`,
        )}
      </div>
      ${older.length
        ? html`<details class="recent" data-testid="recent-closed">
            <summary class="button button--quiet">${icon("history")}${t("queue.recent", { n: older.length })}</summary>
            <ul>${older.map(
              (r) => html`<li data-testid=${`recent-row-${r.id}`} data-status=${r.status}>
                <span class="state state--${erState(r)}">${t(`card.closed.${erState(r)}`)}</span>
                ${r.condition?.chief_complaint ?? ""} <span class="muted">${r.crew?.crew_name ?? ""} · ${formatClock(Date.parse(r.closed_at ?? r.decided_at ?? r.created_at))}</span>
              </li>`,
            )}</ul>
          </details>`
        : nothing}
    </section>`;
  }
}

customElements.define("weer-request-queue", RequestQueue);
