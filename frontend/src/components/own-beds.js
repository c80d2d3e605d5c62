// The ER's own current counts as the crews see them (its `beds.<region>` stream, filtered to
// its hpid): ER general, held by approved requests, pediatric, isolation; and its equipment,
// its messages and how old the data is. Changes flash "old → new" like on the tablets.
import { html, nothing } from "lit";

import { EQUIPMENT, flagState } from "../bed-fields.js";
import { ageLevel } from "../er-ranking.js";
import { t, formatAge } from "../i18n.js";
import { bedCount, flashNote } from "./bed-count.js";
import { icon } from "./icons.js";
import { LightElement } from "./light-element.js";

export class OwnBeds extends LightElement {
  static properties = { board: { attribute: false }, hpid: { type: String }, old: { type: Boolean } };

  constructor() {
    super();
    this.board = null;
    this.hpid = "";
    this.old = false;
    this._onChange = () => this.requestUpdate();
  }

  connectedCallback() {
    super.connectedCallback();
    this._timer = setInterval(this._onChange, 15_000);
  }

  disconnectedCallback() {
    super.disconnectedCallback();
    clearInterval(this._timer);
  }

  willUpdate(changed) {
    if (changed.has("board")) {
      changed.get("board")?.removeEventListener("change", this._onChange);
      this.board?.addEventListener("change", this._onChange);
    }
  }

  render() {
    const { board, hpid } = this;
    const status = board?.status.get(hpid) ?? null;
    const beds = status?.beds ?? {};
    const flash = (field) => board.flash(hpid, field) ?? board.flash(hpid, `${field}_capacity`);
    const age = board?.ageSeconds(hpid) ?? null;
    const level = ageLevel(age, status?.stale);
    const count = (field, testid, size) => bedCount({ label: t(`beds.${field}`), value: beds[field], capacity: beds[`${field}_capacity`], flash: flash(field), testid, size });
    return html`<section class="own-beds ${this.old ? "is-old" : ""}" data-testid="own-beds" aria-label=${t("own.title")}>
      <h2>${t("own.title")}</h2>
      ${!status ? html`<p class="muted" data-testid="own-beds-unknown">${t("own.unknown")}</p>` : nothing}
      <div class="own-beds__grid">
        ${count("er_general", "own-er-general", "huge")}
        <div class="count count--huge count--held ${board?.flash(hpid, "held") ? "is-flashing" : ""}" data-testid="own-held" data-value=${status?.held ?? ""}>
          <span class="count__label">${icon("hold")}${t("own.held")}</span>
          <span class="count__line"><span class="count__value">${status ? status.held : "—"}</span></span>
          ${flashNote(board?.flash(hpid, "held"))}
        </div>
        ${count("er_pediatric", "own-er-pediatric")}
        ${count("er_negative_isolation", "own-er-negative-isolation")}
        ${count("er_general_isolation", "own-er-general-isolation")}
      </div>
      <ul class="equipment equipment--own" aria-label=${t("equipment.title")}>
        ${EQUIPMENT.map((name) => {
          const state = flagState(beds[name]);
          return html`<li class="equipment__item equipment__item--${state}" data-testid=${`own-equipment-${name}`} data-state=${state}>
            ${icon(state === "yes" ? "check" : state === "no" ? "cross" : "unknown")}<span>${t(`equipment.${name}`)}</span>
            <span class="visually-hidden">${t(`flag.${state}`)}</span></li>`;
        })}
      </ul>
      <p class="age age--${level}" data-testid="own-data-age" data-level=${level}>
        ${icon(level === "fresh" ? "clock" : "warning")}${age === null ? t("age.unknown") : formatAge(age)}
        ${level !== "fresh" && level !== "unknown" ? html`<strong class="age__tag">${t(`age.${level}`)}</strong>` : nothing}
        ${this.old ? html`<strong class="age__tag">${t("age.last_known")}</strong>` : nothing}
      </p>
      ${board?.announcements(hpid).length
        ? html`<ul class="er-messages" data-testid="own-messages">${board.announcements(hpid).map(
            (m) => html`<li class="er-messages__item">${icon("message")}<span class="er-messages__type">${t(`messages.type.${m.message_type}`, {}, m.message_type)}</span>
              ${m.disease_name ? html`<span>${m.disease_name}</span>` : nothing}<span>${m.message}</span></li>`,
          )}</ul>`
        : nothing}
      <p class="muted small">${t("own.hint")}</p>
    </section>`;
  }
}

customElements.define("weer-own-beds", OwnBeds);
