// The ambulance tablet (/crew/): where we are, the nearest ERs with their live beds (list and
// map), the filters, the request form for 1–3 chosen ERs, and the live status of the crew's
// requests. The page entry (crew.js) builds the services and hands them in; this element
// holds the UI state (position, filters, selection) and turns taps into API calls.
import { html, nothing } from "lit";

import { api } from "../api.js";
import { MAX_HOSPITALS_PER_REQUEST } from "../clinical.js";
import { DEFAULT_FILTERS, rankHospitals, sigunguCentres } from "../er-ranking.js";
import { t, formatClock, formatCoordinates } from "../i18n.js";
import { Status } from "../protocol.js";
import { chimeSound, warningSound } from "../sounds.js";
import { icon } from "./icons.js";
import { LightElement } from "./light-element.js";
import "./connection-banner.js";
import "./connection-indicator.js";
import "./er-filters.js";
import "./er-list.js";
import "./er-map.js";
import "./past-transports.js";
import "./position-picker.js";
import "./request-status.js";
import "./reservation-form.js";

const POSITION_KEY = "weer.crew.position";
const FILTERS_KEY = "weer.crew.filters";
const NOTICE_MS = 12_000;
const VIBRATE_APPROVED = [300, 120, 300, 120, 600];
const VIBRATE_OTHER = [600, 200, 600];

function readJson(key, fallback) {
  try {
    return JSON.parse(localStorage.getItem(key) ?? "null") ?? fallback;
  } catch {
    return fallback;
  }
}

export class CrewApp extends LightElement {
  static properties = {
    connection: { attribute: false },
    board: { attribute: false },
    book: { attribute: false },
    outbox: { attribute: false },
    regions: { attribute: false },
    user: { attribute: false },
    profile: { attribute: false },
    headerIndicator: { type: Boolean },
    _position: { state: true },
    _geoState: { state: true },
    _picking: { state: true },
    _filters: { state: true },
    _selected: { state: true },
    _focus: { state: true },
    _formOpen: { state: true },
    _serverErrors: { state: true },
    _notice: { state: true },
    _busy: { state: true },
    _pastKey: { state: true },
  };

  constructor() {
    super();
    this.connection = null;
    this.board = null;
    this.book = null;
    this.outbox = null;
    this.regions = [];
    this.user = null;
    this.profile = null;
    this.headerIndicator = false; // the site header (base.html) shows the connection and log-out
    this._position = readJson(POSITION_KEY, null);
    this._geoState = "idle";
    this._picking = false;
    this._filters = { ...DEFAULT_FILTERS, ...readJson(FILTERS_KEY, {}) };
    this._selected = [];
    this._focus = null;
    this._formOpen = false;
    this._serverErrors = null;
    this._notice = null;
    this._busy = new Set();
    this._pastKey = 0;
    this._lastBody = null;
    this._watch = null;
    this._rerender = () => this.requestUpdate();
    this._onReservation = (event) => this._reservationEvent(event.detail);
    this._onSent = (event) => this._sent(event.detail);
    this._onFailed = (event) => this._failed(event.detail);
    this._onKey = (event) => {
      if (event.key === "Escape" && this._formOpen) this._formOpen = false;
    };
  }

  connectedCallback() {
    super.connectedCallback();
    this.board.addEventListener("change", this._rerender);
    this.book.addEventListener("reservation", this._onReservation);
    this.book.addEventListener("change", this._rerender);
    this.outbox.addEventListener("change", this._rerender);
    this.outbox.addEventListener("sent", this._onSent);
    this.outbox.addEventListener("failed", this._onFailed);
    this.connection.addEventListener("status", this._rerender);
    document.addEventListener("keydown", this._onKey);
    // Ages ("3분 전 갱신") move on even when nothing arrives.
    this._tick = setInterval(this._rerender, 15_000);
    if (!this._position || this._position.source === "gps") this._locate();
  }

  disconnectedCallback() {
    super.disconnectedCallback();
    clearInterval(this._tick);
    document.removeEventListener("keydown", this._onKey);
    if (this._watch !== null) navigator.geolocation?.clearWatch(this._watch);
  }

  // --- position -------------------------------------------------------------------------

  _setPosition(position) {
    this._position = position;
    localStorage.setItem(POSITION_KEY, JSON.stringify(position));
  }

  _locate() {
    if (!navigator.geolocation) {
      this._geoState = "unavailable";
      return;
    }
    if (this._watch !== null) navigator.geolocation.clearWatch(this._watch);
    this._geoState = "locating";
    this._watch = navigator.geolocation.watchPosition(
      (fix) => {
        this._geoState = "ok";
        this._setPosition({ lat: fix.coords.latitude, lon: fix.coords.longitude, accuracy: fix.coords.accuracy, source: "gps", label: null });
      },
      (error) => {
        this._geoState = error.code === error.PERMISSION_DENIED ? "denied" : "unavailable";
      },
      { enableHighAccuracy: true, maximumAge: 30_000, timeout: 20_000 },
    );
  }

  _manualPosition(position) {
    // A position set by hand wins over GPS until the crew asks for GPS again.
    if (this._watch !== null) navigator.geolocation.clearWatch(this._watch);
    this._watch = null;
    if (this._geoState === "locating" || this._geoState === "ok") this._geoState = "idle";
    this._setPosition(position);
  }

  _mapPick({ lat, lon }) {
    this._picking = false;
    this._manualPosition({ lat, lon, source: "map", label: formatCoordinates(lat, lon) });
  }

  // --- filters and selection --------------------------------------------------------------

  _setFilters(filters) {
    this._filters = filters;
    localStorage.setItem(FILTERS_KEY, JSON.stringify(filters));
  }

  _select({ hpid, selected }) {
    if (selected) {
      if (this._selected.includes(hpid) || this._selected.length >= MAX_HOSPITALS_PER_REQUEST) return;
      this._selected = [...this._selected, hpid];
    } else {
      this._selected = this._selected.filter((h) => h !== hpid);
    }
  }

  _focusEr({ hpid, fromMap }) {
    this._focus = { hpid, at: Date.now() };
    if (fromMap) this.querySelector("weer-er-list")?.reveal(hpid);
  }

  // --- requests ---------------------------------------------------------------------------

  _submit({ condition }) {
    const body = { hospitals: [...this._selected], condition };
    if (this._position) {
      body.latitude = this._position.lat;
      body.longitude = this._position.lon;
    }
    this._lastBody = body;
    this._serverErrors = null;
    this.outbox.add(body);
    this._selected = [];
    this._formOpen = false;
    this.querySelector("weer-reservation-form")?.reset();
    const live = this.connection.status === Status.LIVE && navigator.onLine !== false;
    this._say(live ? "info" : "warning", live ? t("notice.sending") : t("notice.queued"));
  }

  _sent({ reservations }) {
    for (const r of reservations ?? []) this.book.upsert(r);
    this._say("info", t("notice.sent", { n: reservations?.length ?? 0 }));
  }

  _failed({ entry, error }) {
    if (error.code === "too_old") {
      this._say("warning", t("notice.too_old"));
      return;
    }
    // Give the crew the request back, with the server's reasons on the fields.
    this._selected = entry.body.hospitals.slice(0, MAX_HOSPITALS_PER_REQUEST);
    this._formOpen = true;
    this.updateComplete.then(() => this.querySelector("weer-reservation-form")?.restore?.(entry.body.condition));
    this._serverErrors = error.fields ?? {};
    this._say("error", t("notice.failed", { error: error.message }));
  }

  async _act(id, action) {
    this._busy = new Set([...this._busy, id]);
    try {
      this.book.upsert(await api(`/api/reservations/${id}/${action}`, { method: "POST" }));
    } catch (error) {
      if (error.current) this.book.upsert(error.current);
      this._say("error", t(`notice.${action}_failed`, { error: error.message }));
    } finally {
      const busy = new Set(this._busy);
      busy.delete(id);
      this._busy = busy;
    }
  }

  _reservationEvent({ type, reservation: r, previous }) {
    const name = r.hospital_name;
    if (!previous || previous.status !== r.status) {
      if (r.status !== "pending" && r.status !== "approved") this._pastKey += 1;
    }
    switch (type) {
      case "reservation.decided":
        if (r.status === "approved") {
          this._alert(chimeSound(), VIBRATE_APPROVED);
          this._say("success", t("notice.approved", { name }));
        } else if (r.status === "rejected") {
          this._alert(warningSound(), VIBRATE_OTHER);
          this._say("error", t("notice.rejected", { name, reason: t(`decline.${r.decline_reason}`, {}, r.decline_reason ?? "") }));
        }
        break;
      case "reservation.reminder":
        this._alert(warningSound(), VIBRATE_OTHER);
        this._say("warning", t("notice.unseen", { name }));
        break;
      case "reservation.expired":
        this._alert(warningSound(), VIBRATE_OTHER);
        this._say("warning", t("notice.expired", { name }));
        break;
      case "reservation.withdrawn":
        this._say("info", t("notice.withdrawn", { name }));
        break;
      case "reservation.acknowledged":
        this._say("info", t("notice.seen", { name }));
        break;
      case "reservation.hold_expired":
        this._alert(warningSound(), VIBRATE_OTHER);
        this._say("warning", t("notice.hold_expired", { name }));
        break;
      default:
        break;
    }
  }

  _alert(src, pattern) {
    const audio = this.querySelector("audio[data-testid='decision-sound']");
    if (audio) {
      audio.src = src;
      audio.currentTime = 0;
      audio.play().catch(() => {});
    }
    navigator.vibrate?.(pattern);
  }

  /** Show a notice; a less important one does not hide a decision shown moments ago. */
  _say(kind, text) {
    const rank = { info: 0, warning: 1, success: 2, error: 2 };
    const current = this._notice;
    if (current && rank[current.kind] > rank[kind] && Date.now() - current.at < NOTICE_MS / 2) return;
    clearTimeout(this._noticeTimer);
    this._notice = { kind, text, at: Date.now() };
    this._noticeTimer = setTimeout(() => (this._notice = null), NOTICE_MS);
  }

  // --- rendering --------------------------------------------------------------------------

  render() {
    const rows = rankHospitals(this.board, { position: this._position, filters: this._filters });
    const live = this.connection.status === Status.LIVE && this.board.liveAt !== null;
    const old = !live;
    const chosen = this._selected.map((hpid) => rows.find((r) => r.hpid === hpid) ?? this._rowFor(hpid)).filter(Boolean);
    const names = new Map([...this.board.hospitals.values()].map((h) => [h.hpid, h.name]));
    return html`<div class="crew ${this._formOpen ? "has-drawer" : ""}" data-testid="crew-app">
      ${this.headerIndicator
        ? nothing
        : html`<header class="topbar">
            <h1 class="topbar__title">${icon("bed")}${t("crew.title")}</h1>
            <weer-connection-indicator .connection=${this.connection}></weer-connection-indicator>
            <a class="button button--quiet" href="/logout/" data-testid="logout">${t("nav.logout")}</a>
          </header>`}
      <weer-connection-banner .connection=${this.connection} variant="crew"></weer-connection-banner>
      ${this.board.savedAt && !live
        ? html`<p class="notice notice--warning" data-testid="saved-values-note">${icon("history")}${t("crew.saved_values", { time: formatClock(this.board.savedAt) })}</p>`
        : nothing}
      ${this._notice
        ? html`<p class="toast toast--${this._notice.kind}" role="alert" data-testid="crew-notice" data-kind=${this._notice.kind}>
            ${icon(this._notice.kind === "success" ? "check" : this._notice.kind === "info" ? "bell" : "warning")}${this._notice.text}</p>`
        : nothing}
      <audio data-testid="decision-sound" preload="auto"></audio>

      <weer-position-picker class="crew__position" .position=${this._position} .crewName=${[this.profile?.agency, this.profile?.crew_name].filter(Boolean).join(" · ")} .regions=${this.regions} .centres=${sigunguCentres(this.board)}
          ?picking=${this._picking} .geoState=${this._geoState}
          @locate=${() => this._locate()} @pick-toggle=${() => (this._picking = !this._picking)}
          @position-change=${(e) => this._manualPosition(e.detail.position)}></weer-position-picker>

      <div class="crew__main">
        <div class="crew__list">
          <weer-er-filters .filters=${this._filters} @filters-change=${(e) => this._setFilters(e.detail.filters)}></weer-er-filters>
          <weer-er-list .rows=${rows} .board=${this.board} .selected=${this._selected} .category=${this._filters.category} ?old=${old}
              @er-select=${(e) => this._select(e.detail)} @er-focus=${(e) => this._focusEr(e.detail)}></weer-er-list>
        </div>
        <div class="crew__side">
          <weer-er-map .rows=${rows} .position=${this._position} ?picking=${this._picking} .selected=${this._selected} .focus=${this._focus}
              @position-pick=${(e) => this._mapPick(e.detail)} @er-focus=${(e) => this._focusEr(e.detail)}></weer-er-map>
          <weer-request-status .book=${this.book} .queued=${this.outbox.entries()} .names=${names} .busy=${this._busy}
              @reservation-cancel=${(e) => this._act(e.detail.id, "cancel")}
              @reservation-complete=${(e) => this._act(e.detail.id, "complete")}
              @outbox-discard=${(e) => this.outbox.discard(e.detail.key)}></weer-request-status>
          <weer-past-transports .refreshKey=${this._pastKey}></weer-past-transports>
        </div>
      </div>

      <div class="selection-bar ${this._selected.length ? "is-active" : ""}" data-testid="selection-bar">
        <span>${t("selection.count", { n: this._selected.length, max: MAX_HOSPITALS_PER_REQUEST })}</span>
        <button type="button" class="button button--primary button--big" data-testid="open-form" ?disabled=${!this._selected.length}
            @click=${() => (this._formOpen = true)}>${icon("send")}${t("selection.open_form")}</button>
      </div>

      <div class="drawer ${this._formOpen ? "is-open" : ""}" role="dialog" aria-modal="true" aria-label=${t("form.title")}
          data-testid="form-drawer" ?hidden=${!this._formOpen}>
        <button type="button" class="button button--quiet drawer__close" data-testid="form-close" @click=${() => (this._formOpen = false)}>
          ${icon("cross")}${t("form.close")}</button>
        <weer-reservation-form .chosen=${chosen} .defaultCategory=${this._filters.category} .serverErrors=${this._serverErrors}
            ?offline=${old || navigator.onLine === false}
            @reservation-submit=${(e) => this._submit(e.detail)} @er-select=${(e) => this._select(e.detail)}></weer-reservation-form>
      </div>
    </div>`;
  }

  _rowFor(hpid) {
    const info = this.board.hospitals.get(hpid);
    return info ? { hpid, info, distanceKm: null, etaMinutes: null } : null;
  }
}

customElements.define("weer-crew-app", CrewApp);
