// The crew's requests, live from its `crew.<id>` stream: for each ER, sent → seen by the ER →
// approved / rejected (with the reason) / withdrawn / expired / cancelled / completed, and
// "nobody has seen it yet" once the server has re-alerted the ER. Requests still in the
// outbox (not yet accepted by the server) show as queued. Emits "reservation-cancel" ({id}),
// "reservation-complete" ({id}) and "outbox-discard" ({key}). Cancel asks for a second tap.
import { html, nothing } from "lit";

import { t, formatClock, formatCountdown, formatDistance } from "../i18n.js";
import { isOpen } from "../reservation-book.js";
import { icon } from "./icons.js";
import { LightElement } from "./light-element.js";

export const RECENT_MS = 30 * 60_000;

const ICONS = {
  queued: "hourglass", sent: "send", unseen: "warning", seen: "eye", approved: "check", rejected: "cross",
  withdrawn: "undo", expired: "clock", cancelled: "cross", completed: "flag", hold_expired: "clock",
};

/** What the crew reads for one reservation. */
export function crewState(r, now = Date.now()) {
  if (r.status === "pending") {
    if (r.acknowledged_at) return "seen";
    return r.reminded_at ? "unseen" : "sent";
  }
  if (r.status === "approved" && (r.hold_released_at || (r.hold_expires_at && Date.parse(r.hold_expires_at) <= now))) return "hold_expired";
  return r.status;
}

export class RequestStatus extends LightElement {
  static properties = {
    book: { attribute: false },
    queued: { attribute: false },
    names: { attribute: false },
    busy: { attribute: false },
    _confirming: { state: true },
  };

  constructor() {
    super();
    this.book = null;
    this.queued = [];
    this.names = new Map();
    this.busy = new Set();
    this._confirming = null;
    this._onChange = () => this.requestUpdate();
  }

  connectedCallback() {
    super.connectedCallback();
    this._timer = setInterval(() => this.requestUpdate(), 1000);
  }

  disconnectedCallback() {
    super.disconnectedCallback();
    clearInterval(this._timer);
    this.book?.removeEventListener("change", this._onChange);
  }

  willUpdate(changed) {
    if (changed.has("book")) {
      changed.get("book")?.removeEventListener("change", this._onChange);
      this.book?.addEventListener("change", this._onChange);
    }
  }

  /** Cancelling takes a second tap within a few seconds: a bump in the road is not a cancel. */
  _cancel(id) {
    clearTimeout(this._confirmTimer);
    if (this._confirming === id) {
      this._confirming = null;
      this.emit("reservation-cancel", { id });
      return;
    }
    this._confirming = id;
    this._confirmTimer = setTimeout(() => (this._confirming = null), 4000);
  }

  _groups() {
    const now = Date.now();
    const groups = new Map();
    for (const r of this.book?.all() ?? []) {
      const recent = isOpen(r) || (this.book.closedAt.has(r.id) && now - this.book.closedAt.get(r.id) < RECENT_MS);
      if (!recent) continue;
      if (!groups.has(r.group)) groups.set(r.group, []);
      groups.get(r.group).push(r);
    }
    return [...groups.entries()]
      .map(([group, items]) => ({ group, items: items.sort((a, b) => a.id - b.id), created: Math.max(...items.map((r) => Date.parse(r.created_at))) }))
      .sort((a, b) => b.created - a.created);
  }

  render() {
    const groups = this._groups();
    if (!groups.length && !this.queued.length) {
      return html`<section class="requests requests--empty" data-testid="request-panel"><p class="muted" data-testid="request-none">${t("request.none")}</p></section>`;
    }
    return html`<section class="requests" data-testid="request-panel" aria-label=${t("request.title")}>
      <h2>${t("request.title")}</h2>
      ${this.queued.map((entry) => this._queued(entry))}
      ${groups.map((g, index) => this._group(g, index === 0 && !this.queued.length))}
    </section>`;
  }

  _queued(entry) {
    return html`<article class="request-group request-group--queued" data-testid="queued-request" data-key=${entry.key}>
      <header class="request-group__head">
        ${icon("hourglass")}<strong>${t("request.queued_title")}</strong>
        <span class="muted">${t("request.queued_since", { time: formatClock(Date.parse(entry.created_at)) })}</span>
      </header>
      <ul class="request-group__list">
        ${entry.body.hospitals.map(
          (hpid) => html`<li class="request-er request-er--queued" data-testid=${`queued-status-${hpid}`} data-status="queued">
            <span class="request-er__name">${this.names.get(hpid) ?? hpid}</span>
            <span class="state state--queued">${icon("hourglass")}${t("request.state.queued")}</span>
          </li>`,
        )}
      </ul>
      <p class="muted small">${entry.last_error ? t("request.queued_error", { error: entry.last_error }) : t("request.queued_hint")}</p>
      <button type="button" class="button button--quiet" data-testid="queued-discard" @click=${() => this.emit("outbox-discard", { key: entry.key })}>
        ${icon("cross")}${t("request.discard")}</button>
    </article>`;
  }

  _group({ group, items }, newest) {
    const approved = items.find((r) => r.status === "approved");
    return html`<article class="request-group ${approved ? "request-group--approved" : ""}" data-testid=${`request-group-${group}`} data-group=${group}>
      <header class="request-group__head">
        ${icon("send")}<strong>${t("request.group_title", { time: formatClock(Date.parse(items[0].created_at)) })}</strong>
        <span class="muted">${items[0].condition?.chief_complaint ?? ""}</span>
      </header>
      <ul class="request-group__list">${items.map((r) => this._row(r, newest))}</ul>
    </article>`;
  }

  _row(r, newest) {
    const state = crewState(r);
    const now = this.book?.serverNow() ?? Date.now();
    const busy = this.busy.has(r.id);
    let detail = nothing;
    if (state === "sent" || state === "seen" || state === "unseen") {
      detail = html`<span class="countdown" data-testid="request-expiry">${icon("clock")}${t("request.expires_in", { time: formatCountdown(Date.parse(r.expires_at) - now) })}</span>`;
    } else if (state === "rejected") {
      detail = html`<span data-testid="request-reason">${t(`decline.${r.decline_reason}`, {}, r.decline_reason ?? "")}${r.decline_note ? ` — ${r.decline_note}` : ""}</span>`;
    } else if (state === "approved" && r.hold_expires_at) {
      detail = html`<span>${t("request.hold_until", { time: formatClock(Date.parse(r.hold_expires_at)) })}</span>`;
    }
    return html`<li class="request-er request-er--${state}" data-testid=${newest ? `request-status-${r.hpid}` : `reservation-${r.id}`}
        data-reservation-id=${r.id} data-status=${state} aria-live="polite">
      <span class="request-er__name">${r.hospital_name}
        ${r.distance_km !== null && r.distance_km !== undefined ? html`<span class="muted small">${formatDistance(r.distance_km)} · ${t("list.eta", { minutes: r.eta_minutes })}</span>` : nothing}
      </span>
      <span class="state state--${state}" data-testid="request-state">${icon(ICONS[state] ?? "unknown")}${t(`request.state.${state}`)}</span>
      ${state === "unseen" ? html`<strong class="notice notice--warning request-er__unseen" data-testid="request-unseen">${t("request.unseen_notice")}</strong>` : nothing}
      <span class="request-er__detail">${detail}</span>
      <span class="request-er__actions">
        ${r.status === "approved"
          ? html`<button type="button" class="button button--primary" data-testid="request-complete" ?disabled=${busy}
              @click=${() => this.emit("reservation-complete", { id: r.id })}>${icon("flag")}${t("request.complete")}</button>`
          : nothing}
        ${isOpen(r)
          ? html`<button type="button" class="button button--danger" data-testid="request-cancel" ?disabled=${busy}
              data-confirming=${this._confirming === r.id ? "true" : "false"}
              @click=${() => this._cancel(r.id)}>${icon("cross")}${this._confirming === r.id ? t("request.cancel_confirm") : t("request.cancel")}</button>`
          : nothing}
      </span>
    </li>`;
  }
}

customElements.define("weer-request-status", RequestStatus);
