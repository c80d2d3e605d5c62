// The ER screen (/er/): for staff of one hospital, on a wall screen or a desk. Incoming
// requests raise a full-screen alert whose sound repeats until someone acknowledges; the
// queue of active requests with acknowledge / approve / reject; the ER's own counts and held
// beds. It keeps the screen awake and says loudly when it is not connected, so a dark or
// disconnected screen is never read as "no requests".
import { html, nothing } from "lit";

import { Alarm } from "../alarm.js";
import { api } from "../api.js";
import { t, formatClock } from "../i18n.js";
import { Status } from "../protocol.js";
import { icon } from "./icons.js";
import { LightElement } from "./light-element.js";
import "./connection-banner.js";
import "./connection-indicator.js";
import "./incoming-alert.js";
import "./own-beds.js";
import "./request-queue.js";

const SILENCE_MS = 60_000;
const NOTICE_MS = 10_000;

export class ErApp extends LightElement {
  static properties = {
    connection: { attribute: false },
    board: { attribute: false },
    book: { attribute: false },
    hospital: { attribute: false },
    user: { attribute: false },
    wakeLock: { attribute: false },
    headerIndicator: { type: Boolean },
    _now: { state: true },
    _busy: { state: true },
    _notice: { state: true },
  };

  constructor() {
    super();
    this.connection = null;
    this.board = null;
    this.book = null;
    this.hospital = null;
    this.user = null;
    this.wakeLock = null;
    this.headerIndicator = false; // the site header (base.html) shows the connection and log-out
    this._now = Date.now();
    this._busy = new Set();
    this._notice = null;
    this._rerender = () => this.requestUpdate();
    this._onReservation = (event) => this._reservationEvent(event.detail);
  }

  connectedCallback() {
    super.connectedCallback();
    this.book.addEventListener("change", this._rerender);
    this.book.addEventListener("reservation", this._onReservation);
    this.connection.addEventListener("status", this._rerender);
    this.wakeLock?.addEventListener("change", this._rerender);
    this._tick = setInterval(() => (this._now = Date.now()), 1000);
  }

  disconnectedCallback() {
    super.disconnectedCallback();
    clearInterval(this._tick);
  }

  firstUpdated() {
    this.alarm = new Alarm(this.querySelector("audio[data-testid='alert-sound']"));
    this.alarm.addEventListener("change", this._rerender);
    this.alarm.probe();
    this.wakeLock?.acquire();
  }

  /** Pending requests nobody has acknowledged yet, oldest first: the alert's subject. */
  _unacknowledged() {
    return this.book.open().filter((r) => r.status === "pending" && !r.acknowledged_at);
  }

  updated() {
    if (!this.alarm) return;
    const waiting = this._unacknowledged().length > 0;
    if (waiting && !this.alarm.wanted) this.alarm.start();
    if (!waiting && this.alarm.wanted) this.alarm.stop();
  }

  _reservationEvent({ type, reservation: r }) {
    if (type === "reservation.requested" || type === "reservation.reminder") {
      // A new request, or the server's reminder that one is still unseen: sound again even
      // if someone silenced the alarm.
      this.updateComplete.then(() => this.alarm?.start({ reAlert: true }));
    }
    if (type === "reservation.withdrawn") this._say("info", t("er.notice.withdrawn", { id: r.id }));
    if (type === "reservation.cancelled") this._say("info", t("er.notice.cancelled", { id: r.id }));
    if (type === "reservation.expired") this._say("warning", t("er.notice.expired", { id: r.id }));
  }

  async _act(id, action, body) {
    this._busy = new Set([...this._busy, id]);
    try {
      this.book.upsert(await api(`/api/reservations/${id}/${action}`, { method: "POST", body }));
    } catch (error) {
      if (error.current) this.book.upsert(error.current);
      this._say("error", error.message);
    } finally {
      const busy = new Set(this._busy);
      busy.delete(id);
      this._busy = busy;
    }
  }

  _say(kind, text) {
    clearTimeout(this._noticeTimer);
    this._notice = { kind, text };
    this._noticeTimer = setTimeout(() => (this._notice = null), NOTICE_MS);
  }

  _enableSound() {
    this.alarm?.enable();
    this.wakeLock?.acquire();
  }

  render() {
    const live = this.connection.status === Status.LIVE;
    const waiting = this._unacknowledged();
    const serverNow = this.book.serverNow();
    const alarm = this.alarm;
    const soundState = alarm?.state ?? "unknown";
    return html`<div class="er ${live ? "" : "is-disconnected"}" data-testid="er-screen" data-live=${live ? "true" : "false"}
        @request-acknowledge=${(e) => this._act(e.detail.id, "acknowledge")}
        @request-approve=${(e) => this._act(e.detail.id, "approve")}
        @request-reject=${(e) => this._act(e.detail.id, "reject", { reason: e.detail.reason, note: e.detail.note })}>
      <header class="topbar topbar--er">
        <h1 class="topbar__title" data-testid="hospital-name">${icon("screen")}${this.hospital?.name ?? this.user?.hpid ?? ""}</h1>
        <span class="topbar__clock" data-testid="clock">${formatClock(this._now)}</span>
        ${this.headerIndicator ? nothing : html`<weer-connection-indicator .connection=${this.connection}></weer-connection-indicator>`}
        <span class="pill pill--${soundState}" data-testid="sound-state" data-state=${soundState}>
          ${icon(soundState === "enabled" ? "sound" : "mute")}${t(`sound.${soundState}`)}</span>
        ${soundState === "blocked"
          ? html`<button type="button" class="button button--primary button--big" data-testid="sound-enable" @click=${this._enableSound}>
              ${icon("sound")}${t("sound.enable")}</button>`
          : nothing}
        <span class="pill pill--${this.wakeLock?.state ?? "unsupported"}" data-testid="wake-lock-state" data-state=${this.wakeLock?.state ?? "unsupported"}>
          ${icon("screen")}${t(`wake.${this.wakeLock?.state ?? "unsupported"}`)}</span>
        ${this.headerIndicator ? nothing : html`<a class="button button--quiet" href="/logout/" data-testid="logout">${t("nav.logout")}</a>`}
      </header>
      <weer-connection-banner .connection=${this.connection} variant="er"></weer-connection-banner>
      ${this._notice ? html`<p class="toast toast--${this._notice.kind}" role="status" data-testid="er-notice">${icon("bell")}${this._notice.text}</p>` : nothing}
      <audio data-testid="alert-sound" preload="auto"></audio>
      <div class="er__main" ?inert=${waiting.length > 0}>
        <weer-request-queue .book=${this.book} .now=${serverNow} .busy=${this._busy} ?live=${live}></weer-request-queue>
        <weer-own-beds .board=${this.board} hpid=${this.user?.hpid ?? ""} ?old=${!live}></weer-own-beds>
      </div>
      <weer-incoming-alert .reservation=${waiting[0] ?? null} .count=${waiting.length} .now=${serverNow}
          ?silenced=${alarm?.silenced ?? false} ?soundBlocked=${soundState === "blocked"} ?busy=${waiting[0] ? this._busy.has(waiting[0].id) : false}
          @alarm-silence=${() => alarm?.silence(SILENCE_MS)} @sound-enable=${this._enableSound}></weer-incoming-alert>
    </div>`;
  }
}

customElements.define("weer-er-app", ErApp);
