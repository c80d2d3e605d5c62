// One ER in the crew's list: beds (ER general, pediatric, isolation, held), equipment,
// acceptance of the chosen severe-illness category, the ER's messages, distance / straight-
// line ETA, and how old the data is. Every changed value flashes "old → new" for a while.
import { html, nothing } from "lit";

import { EQUIPMENT, flagState } from "../bed-fields.js";
import { t, formatAge, formatDistance, categoryLabel } from "../i18n.js";
import { bedCount, flashNote } from "./bed-count.js";
import { icon } from "./icons.js";
import { LightElement } from "./light-element.js";

const MESSAGES_SHOWN = 3;
const ACCEPTANCE_ICONS = { yes: "check", no: "cross", unreported: "unknown", loading: "sync" };

export class ErRow extends LightElement {
  static properties = {
    row: { attribute: false },
    board: { attribute: false },
    selected: { type: Boolean },
    selectable: { type: Boolean },
    category: { attribute: false },
    old: { type: Boolean },
  };

  constructor() {
    super();
    this.row = null;
    this.board = null;
    this.selected = false;
    this.selectable = true;
    this.category = null;
    this.old = false;
  }

  _toggle() {
    this.emit("er-select", { hpid: this.row.hpid, selected: !this.selected });
  }

  _focusOnMap() {
    this.emit("er-focus", { hpid: this.row.hpid });
  }

  render() {
    const { row, board } = this;
    if (!row) return nothing;
    const { hpid, info } = row;
    const beds = row.status?.beds ?? {};
    const flash = (field) => board.flash(hpid, field);
    const count = (field, label, testid, size) =>
      bedCount({ label, value: beds[field], capacity: beds[`${field}_capacity`], flash: flash(field) ?? flash(`${field}_capacity`), testid, size });
    return html`<article class="er-row ${this.selected ? "is-selected" : ""} ${board.hasFlash(hpid) ? "has-flash" : ""} ${this.old ? "is-old" : ""}"
        data-testid=${`er-row-${hpid}`} data-hpid=${hpid} aria-label=${info.name}>
      <header class="er-row__head">
        <h3 class="er-row__name">
          <button type="button" class="linkish" @click=${this._focusOnMap} title=${t("list.show_on_map")}>${info.name}</button>
          <span class="er-row__class">${info.emergency_class_name ?? ""}</span>
        </h3>
        <div class="er-row__distance" data-testid="distance">
          ${row.distanceKm === null
            ? html`<span class="muted">${t("list.no_position")}</span>`
            : html`${icon("pin")}<strong>${formatDistance(row.distanceKm)}</strong>
                <span>${t("list.eta", { minutes: row.etaMinutes })}</span>
                <span class="muted small">${t("list.straight_line")}</span>`}
        </div>
        ${this._age(row)}
      </header>
      <div class="er-row__beds">
        ${count("er_general", t("beds.er_general"), "er-general", "large")}
        <div class="count count--held ${flash("held") ? "is-flashing" : ""}" data-testid="held" data-value=${row.status?.held ?? 0} data-flash=${flash("held") ? "on" : "off"}>
          <span class="count__label">${icon("hold")}${t("beds.held")}</span>
          <span class="count__line"><span class="count__value">${row.status ? row.status.held : "—"}</span></span>
          ${flashNote(flash("held"))}
        </div>
        ${count("er_pediatric", t("beds.er_pediatric"), "er-pediatric")}
        ${count("er_negative_isolation", t("beds.er_negative_isolation"), "er-negative-isolation")}
        ${count("er_general_isolation", t("beds.er_general_isolation"), "er-general-isolation")}
      </div>
      <ul class="equipment" aria-label=${t("equipment.title")}>
        ${EQUIPMENT.map((name) => {
          const state = flagState(beds[name]);
          const changed = flash(name);
          return html`<li class="equipment__item equipment__item--${state} ${changed ? "is-flashing" : ""}"
              data-testid=${`equipment-${name}`} data-state=${state} data-flash=${changed ? "on" : "off"}>
            ${icon(state === "yes" ? "check" : state === "no" ? "cross" : "unknown")}
            <span class="equipment__name">${t(`equipment.${name}`)}</span>
            <span class="visually-hidden">${t(`flag.${state}`)}</span>
            ${flashNote(changed, "flag")}
          </li>`;
        })}
      </ul>
      ${this.category ? this._acceptance(row) : nothing}
      ${this._messages(hpid)}
      <footer class="er-row__foot">
        ${info.er_phone ? html`<a class="button button--quiet" href=${`tel:${info.er_phone}`}>${icon("phone")}${t("list.call", { phone: info.er_phone })}</a>` : nothing}
        <button type="button" class="button ${this.selected ? "button--selected" : "button--primary"}"
            data-testid="select-er" aria-pressed=${this.selected ? "true" : "false"}
            ?disabled=${!this.selected && !this.selectable} @click=${this._toggle}>
          ${icon(this.selected ? "check" : "send")}${this.selected ? t("list.selected") : t("list.select")}
        </button>
      </footer>
    </article>`;
  }

  _age(row) {
    const level = this.old && row.ageLevel === "fresh" ? "old" : row.ageLevel;
    const text = row.ageSeconds === null ? t("age.unknown") : formatAge(row.ageSeconds);
    return html`<div class="age age--${level}" data-testid="data-age" data-level=${row.ageLevel}>
      ${icon(level === "fresh" ? "clock" : "warning")}
      <span>${text}</span>
      ${row.ageLevel !== "fresh" && row.ageLevel !== "unknown" ? html`<strong class="age__tag">${t(`age.${row.ageLevel}`)}</strong>` : nothing}
      ${this.old ? html`<strong class="age__tag" data-testid="last-known">${t("age.last_known")}</strong>` : nothing}
    </div>`;
  }

  _acceptance(row) {
    const value = row.acceptance;
    const state = value === true ? "yes" : value === false ? "no" : value === null ? "unreported" : "loading";
    const changed = this.board.flash(row.hpid, "acceptance");
    return html`<div class="acceptance acceptance--${state} ${changed ? "is-flashing" : ""}" data-testid="acceptance" data-state=${state}>
      ${icon(ACCEPTANCE_ICONS[state])}
      <span class="acceptance__category">${categoryLabel(this.category)}</span>
      <strong>${t(`acceptance.${state}`)}</strong>
    </div>`;
  }

  _messages(hpid) {
    const messages = this.board.announcements(hpid);
    if (!messages.length) return nothing;
    const changed = this.board.flash(hpid, "announcements");
    return html`<ul class="er-messages ${changed ? "is-flashing" : ""}" data-testid="er-messages" aria-label=${t("messages.title")}>
      ${messages.slice(0, MESSAGES_SHOWN).map(
        (m) => html`<li class="er-messages__item er-messages__item--${m.message_type}">
          ${icon("message")}
          <span class="er-messages__type">${t(`messages.type.${m.message_type}`, {}, m.message_type)}</span>
          ${m.disease_name ? html`<span class="er-messages__disease">${m.disease_name}</span>` : nothing}
          <span class="er-messages__text">${m.message}</span>
        </li>`,
      )}
      ${messages.length > MESSAGES_SHOWN ? html`<li class="muted">${t("messages.more", { n: messages.length - MESSAGES_SHOWN })}</li>` : nothing}
    </ul>`;
  }
}

customElements.define("weer-er-row", ErRow);
