// One incoming request on the ER screen: who is coming (Pre-KTAS, vitals, complaint,
// suspected category), the crew and its phone, distance / ETA, and the time left to answer.
// Acknowledge, approve, or reject with a structured reason (a note is required for
// "other"). A request that closed stays a while with its reason in words.
// Emits "request-acknowledge", "request-approve" ({id}) and "request-reject"
// ({id, reason, note}).
import { html, nothing } from "lit";

import { t, formatClock, formatCountdown, formatDistance, categoryLabel } from "../i18n.js";
import { icon } from "./icons.js";
import { LightElement } from "./light-element.js";

export const DECLINE_REASONS = ["no_bed", "no_specialist", "equipment_unavailable", "overcrowded", "other"];
const DECLINE_NOTE_MAX = 500;

/** What the ER reads for a reservation: new / seen / approved / a closed status. */
export function erState(r) {
  if (r.status === "pending") return r.acknowledged_at ? "seen" : "new";
  return r.status;
}

export function vitalsText(c) {
  const parts = [];
  if (c.systolic_bp != null || c.diastolic_bp != null) parts.push(["bp", `${c.systolic_bp ?? "—"}/${c.diastolic_bp ?? "—"}`]);
  if (c.pulse != null) parts.push(["pulse", String(c.pulse)]);
  if (c.respiratory_rate != null) parts.push(["respiratory_rate", String(c.respiratory_rate)]);
  if (c.temperature != null) parts.push(["temperature", String(c.temperature)]);
  if (c.spo2 != null) parts.push(["spo2", `${c.spo2}`]);
  return parts;
}

export function patientSummary(r, { large = false } = {}) {
  const c = r.condition ?? {};
  const vitals = vitalsText(c);
  return html`<div class="patient ${large ? "patient--large" : ""}">
    <div class="patient__line">
      ${c.pre_ktas
        ? html`<span class="ktas ktas--${c.pre_ktas}" data-testid="request-ktas" data-level=${c.pre_ktas}>Pre-KTAS <strong>${c.pre_ktas}</strong> ${t(`pre_ktas.${c.pre_ktas}`)}</span>`
        : html`<span class="ktas ktas--none" data-testid="request-ktas" data-level="">${t("pre_ktas.unrecorded")}</span>`}
      <span class="patient__who">${t(`sex.${c.sex}`, {}, c.sex ?? "")} · ${t(`age_band.${c.age_band}`, {}, c.age_band ?? "")}</span>
      <span class="patient__avpu">${t("card.avpu")}: <strong>${t(`consciousness.${c.consciousness}`, {}, c.consciousness ?? "—")}</strong></span>
    </div>
    <p class="patient__complaint" data-testid="request-complaint">${c.chief_complaint ?? ""}</p>
    ${c.suspected_category ? html`<p class="patient__category" data-testid="request-category">${icon("flag")}${categoryLabel(c.suspected_category)}</p>` : nothing}
    <dl class="vitals-list" data-testid="request-vitals">
      ${vitals.length
        ? vitals.map(([name, value]) => html`<div><dt>${t(`vital_short.${name}`)}</dt><dd>${value}</dd></div>`)
        : html`<div><dt>${t("card.vitals")}</dt><dd>${t("card.no_vitals")}</dd></div>`}
    </dl>
    ${c.note ? html`<p class="patient__note">${icon("message")}${c.note}</p>` : nothing}
  </div>`;
}

export class RequestCard extends LightElement {
  static properties = {
    reservation: { attribute: false },
    now: { attribute: false },
    busy: { type: Boolean },
    closing: { type: Boolean },
    _rejecting: { state: true },
    _reason: { state: true },
    _note: { state: true },
    _error: { state: true },
  };

  constructor() {
    super();
    this.reservation = null;
    this.now = Date.now();
    this.busy = false;
    this.closing = false;
    this._rejecting = false;
    this._reason = "";
    this._note = "";
    this._error = null;
  }

  _confirmReject() {
    if (!this._reason) {
      this._error = t("card.reason_required");
      return;
    }
    if (this._reason === "other" && !this._note.trim()) {
      this._error = t("card.note_required");
      return;
    }
    this._error = null;
    this.emit("request-reject", { id: this.reservation.id, reason: this._reason, note: this._note.trim() });
    this._rejecting = false;
  }

  render() {
    const r = this.reservation;
    if (!r) return nothing;
    const state = erState(r);
    const open = state === "new" || state === "seen" || state === "approved";
    const remaining = Date.parse(r.expires_at) - this.now;
    return html`<article class="request-card request-card--${state}" data-testid=${`request-card-${r.id}`} data-status=${r.status}
        data-state=${state} data-reservation-id=${r.id} aria-label=${t("card.label", { id: r.id })}>
      <header class="request-card__head">
        <span class="state state--${state}" data-testid="request-state">${icon(this._stateIcon(state))}${t(`card.state.${state}`)}</span>
        <span class="request-card__eta" data-testid="request-eta">
          ${r.eta_minutes != null ? html`${icon("clock")}${t("card.eta", { minutes: r.eta_minutes })}` : t("card.eta_unknown")}
          ${r.distance_km != null ? html`<span class="muted">${formatDistance(r.distance_km)} ${t("list.straight_line")}</span>` : nothing}
        </span>
        ${state === "new" || state === "seen"
          ? html`<span class="countdown ${remaining < 60_000 ? "countdown--urgent" : ""}" data-testid="request-expiry">
              ${icon("hourglass")}${t("card.expires_in", { time: formatCountdown(remaining) })}</span>`
          : nothing}
        ${state === "approved" && r.hold_expires_at
          ? html`<span class="muted" data-testid="request-hold">${icon("hold")}${t("card.hold_until", { time: formatClock(Date.parse(r.hold_expires_at)) })}</span>`
          : nothing}
      </header>
      ${patientSummary(r)}
      <p class="request-card__crew" data-testid="request-crew">
        ${icon("phone")}<span>${r.crew?.agency ?? ""} ${r.crew?.crew_name ?? ""}</span>
        ${r.crew?.phone ? html`<a href=${`tel:${r.crew.phone}`} class="button button--quiet">${r.crew.phone}</a>` : nothing}
        <span class="muted small">${t("card.sent_at", { time: formatClock(Date.parse(r.created_at)) })}</span>
      </p>
      ${open ? this._actions(r, state) : this._closed(r, state)}
    </article>`;
  }

  _stateIcon(state) {
    return { new: "bell", seen: "eye", approved: "check", rejected: "cross", withdrawn: "undo", cancelled: "cross", expired: "clock", completed: "flag" }[state] ?? "unknown";
  }

  _actions(r, state) {
    if (state === "approved") {
      return html`<p class="request-card__decided">${icon("check")}${t("card.approved_note")}</p>`;
    }
    if (this._rejecting) {
      return html`<fieldset class="reject" data-testid="reject-form">
        <legend>${t("card.reject_title")}</legend>
        <div class="segmented segmented--reasons">
          ${DECLINE_REASONS.map(
            (reason) => html`<label class="segmented__option ${this._reason === reason ? "is-checked" : ""}" data-testid=${`reject-reason-${reason}`}>
              <input type="radio" name=${`reason-${r.id}`} .value=${reason} .checked=${this._reason === reason}
                  @change=${() => ((this._reason = reason), (this._error = null))}>
              <span>${t(`decline.${reason}`)}</span>
            </label>`,
          )}
        </div>
        <label class="field">
          <span class="field__label">${t("card.reject_note")} ${this._reason === "other" ? html`<strong>${t("card.required")}</strong>` : html`<span class="muted">${t("card.optional")}</span>`}</span>
          <textarea data-testid="reject-note" rows="2" maxlength=${DECLINE_NOTE_MAX} .value=${this._note} @input=${(e) => (this._note = e.target.value)}></textarea>
        </label>
        ${this._error ? html`<p class="form-error" role="alert" data-testid="reject-error">${icon("warning")}${this._error}</p>` : nothing}
        <div class="actions">
          <button type="button" class="button button--danger button--big" data-testid="reject-confirm" ?disabled=${this.busy} @click=${this._confirmReject}>
            ${icon("cross")}${t("card.reject_confirm")}</button>
          <button type="button" class="button button--big" data-testid="reject-cancel" @click=${() => ((this._rejecting = false), (this._error = null))}>
            ${t("card.back")}</button>
        </div>
      </fieldset>`;
    }
    return html`<div class="actions">
      ${state === "new"
        ? html`<button type="button" class="button button--big" data-testid="request-acknowledge" ?disabled=${this.busy}
            @click=${() => this.emit("request-acknowledge", { id: r.id })}>${icon("eye")}${t("card.acknowledge")}</button>`
        : nothing}
      <button type="button" class="button button--primary button--big" data-testid="request-approve" ?disabled=${this.busy}
          @click=${() => this.emit("request-approve", { id: r.id })}>${icon("check")}${t("card.approve")}</button>
      <button type="button" class="button button--danger button--big" data-testid="request-reject" ?disabled=${this.busy}
          @click=${() => {
            this._rejecting = true;
            this.updateComplete.then(() => this.querySelector(".reject input")?.focus());
          }}>${icon("cross")}${t("card.reject")}</button>
    </div>`;
  }

  _closed(r, state) {
    const reason = state === "rejected" && r.decline_reason ? ` — ${t(`decline.${r.decline_reason}`, {}, r.decline_reason)}${r.decline_note ? `: ${r.decline_note}` : ""}` : "";
    return html`<p class="request-card__closed" role="status" data-testid="request-closed-reason">
      ${icon(this._stateIcon(state), "icon icon--big")}<strong>${t(`card.closed.${state}`)}${reason}</strong>
      ${r.closed_at || r.decided_at ? html`<span class="muted">${formatClock(Date.parse(r.closed_at ?? r.decided_at))}</span>` : nothing}
    </p>`;
  }
}

customElements.define("weer-request-card", RequestCard);
