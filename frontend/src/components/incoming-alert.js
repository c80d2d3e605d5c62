// The ER screen's full-screen alert: raised while a request waits to be acknowledged, with
// the patient summary large enough to read across the room. The alarm sounds until someone
// acknowledges (silencing only pauses it; a reminder from the server re-alerts). The
// acknowledge button takes the focus, so Enter or Space acknowledges from the keyboard.
// Emits "request-acknowledge" ({id}), "alarm-silence" and "sound-enable" (the browser blocked
// the sound: the button is the user gesture that unlocks it).
import { html, nothing } from "lit";

import { t, formatCountdown, formatDistance } from "../i18n.js";
import { icon } from "./icons.js";
import { LightElement } from "./light-element.js";
import { patientSummary } from "./request-card.js";

export class IncomingAlert extends LightElement {
  static properties = {
    reservation: { attribute: false },
    count: { type: Number },
    now: { attribute: false },
    silenced: { type: Boolean },
    soundBlocked: { type: Boolean },
    busy: { type: Boolean },
  };

  constructor() {
    super();
    this.reservation = null;
    this.count = 0;
    this.now = Date.now();
    this.silenced = false;
    this.soundBlocked = false;
    this.busy = false;
    this._shownKey = null;
  }

  updated() {
    // The alert is modal: a new request, a reminder, or focus lost (the silence button
    // disables itself) puts the focus back on acknowledge.
    const r = this.reservation;
    const key = r ? `${r.id}|${r.reminded_at ?? ""}` : null;
    const button = this.querySelector("[data-testid='alert-acknowledge']");
    if (button && (key !== this._shownKey || !this.contains(document.activeElement) || document.activeElement?.disabled)) button.focus();
    this._shownKey = key;
  }

  render() {
    const r = this.reservation;
    if (!r) return nothing;
    const reminded = Boolean(r.reminded_at);
    return html`<div class="alert ${reminded ? "alert--reminder" : ""}" role="alertdialog" aria-modal="true"
        aria-labelledby="alert-title" data-testid="alert" data-reservation-id=${r.id}>
      <div class="alert__box">
        <h2 id="alert-title" class="alert__title">${icon("bell", "icon icon--huge")}${t("alert.title")}</h2>
        ${reminded ? html`<p class="alert__reminder" data-testid="alert-reminder">${icon("warning")}${t("alert.reminder")}</p>` : nothing}
        ${this.count > 1 ? html`<p class="alert__more" data-testid="alert-count">${t("alert.more", { n: this.count - 1 })}</p>` : nothing}
        <p class="alert__eta">
          ${r.eta_minutes != null ? t("card.eta", { minutes: r.eta_minutes }) : t("card.eta_unknown")}
          ${r.distance_km != null ? html`<span class="muted"> · ${formatDistance(r.distance_km)}</span>` : nothing}
          <span class="alert__crew">· ${r.crew?.agency ?? ""} ${r.crew?.crew_name ?? ""}</span>
        </p>
        ${patientSummary(r, { large: true })}
        <p class="countdown" data-testid="alert-expiry">${icon("hourglass")}${t("card.expires_in", { time: formatCountdown(Date.parse(r.expires_at) - this.now) })}</p>
        ${this.soundBlocked
          ? html`<p class="notice notice--warning">${icon("mute")}${t("sound.blocked")}
              <button type="button" class="button button--primary" data-testid="alert-sound-enable" @click=${() => this.emit("sound-enable")}>
                ${icon("sound")}${t("sound.enable")}</button></p>`
          : nothing}
        <div class="actions actions--alert">
          <button type="button" class="button button--primary button--huge" data-testid="alert-acknowledge" ?disabled=${this.busy}
              @click=${() => this.emit("request-acknowledge", { id: r.id })}>${icon("eye")}${t("alert.acknowledge")}</button>
          <button type="button" class="button button--big" data-testid="alert-silence" ?disabled=${this.silenced}
              @click=${() => {
                this.emit("alarm-silence");
                this.querySelector("[data-testid='alert-acknowledge']")?.focus();
              }}>${icon("mute")}${this.silenced ? t("alert.silenced") : t("alert.silence")}</button>
        </div>
      </div>
    </div>`;
  }
}

customElements.define("weer-incoming-alert", IncomingAlert);
