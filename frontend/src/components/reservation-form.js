// The pre-notification: the patient's condition (no names or identifiers), checked against
// the server's clinical ranges (clinical.js) before anything is sent, for the 1–3 ERs chosen
// in the list. Emits "reservation-submit" ({condition}) when valid, and "er-select"
// ({hpid, selected: false}) to take an ER off the request.
import { html, nothing } from "lit";

import {
  AGE_BANDS, CHIEF_COMPLAINT_MAX, CLINICAL_RANGES, CONSCIOUSNESS, MAX_HOSPITALS_PER_REQUEST, NOTE_MAX, PRE_KTAS_LEVELS, SEXES, VITALS, conditionFromForm,
} from "../clinical.js";
import { t, categoryLabel, formatDistance } from "../i18n.js";
import { SUSPECTED_CATEGORIES } from "../severe-illness.js";
import { icon } from "./icons.js";
import { LightElement } from "./light-element.js";

const EMPTY = {
  sex: "", age_band: "", consciousness: "", pre_ktas: "", chief_complaint: "", suspected_category: "", note: "",
  ...Object.fromEntries(VITALS.map((v) => [v, ""])),
};

export class ReservationForm extends LightElement {
  static properties = {
    chosen: { attribute: false },
    defaultCategory: { attribute: false },
    serverErrors: { attribute: false },
    busy: { type: Boolean },
    offline: { type: Boolean },
    _values: { state: true },
    _errors: { state: true },
  };

  constructor() {
    super();
    this.chosen = [];
    this.defaultCategory = null;
    this.serverErrors = null;
    this.busy = false;
    this.offline = false;
    this._values = { ...EMPTY };
    this._errors = {};
    this._touchedCategory = false;
  }

  reset() {
    this._values = { ...EMPTY };
    this._errors = {};
    this._touchedCategory = false;
  }

  /** Put a condition back into the form (a request the server refused). */
  restore(condition) {
    const values = { ...EMPTY };
    for (const key of Object.keys(EMPTY)) {
      const value = condition?.[key];
      values[key] = value === null || value === undefined ? "" : String(value);
    }
    this._values = values;
    this._touchedCategory = true;
  }

  willUpdate(changed) {
    if (changed.has("defaultCategory") && !this._touchedCategory) {
      this._values = { ...this._values, suspected_category: this.defaultCategory ? String(this.defaultCategory) : "" };
    }
    if (changed.has("serverErrors") && this.serverErrors) this._errors = this._fromServer(this.serverErrors);
  }

  /** The API's field errors ("condition.spo2", "condition.__all__", …) on our fields. */
  _fromServer(fields) {
    const errors = {};
    for (const [name, messages] of Object.entries(fields)) {
      const field = name.replace(/^condition\./, "").replace(/^__all__$/, "diastolic_bp");
      (errors[VITALS.includes(field) || field in EMPTY ? field : "__all__"] ??= []).push(...messages.map((text) => ({ text })));
    }
    return errors;
  }

  _set(field, value) {
    if (field === "suspected_category") this._touchedCategory = true;
    this._values = { ...this._values, [field]: value };
    if (this._errors[field]) {
      const { [field]: _, ...rest } = this._errors;
      this._errors = rest;
    }
  }

  _submit(event) {
    event.preventDefault();
    const { condition, errors } = conditionFromForm(this._values);
    if (!this.chosen.length) errors.__hospitals = [{ key: "form.error.no_hospital" }];
    this._errors = errors;
    if (Object.keys(errors).length) {
      this.updateComplete.then(() => this.querySelector("[aria-invalid='true'], .form-error")?.focus?.());
      return;
    }
    this.emit("reservation-submit", { condition });
  }

  _errorsFor(field) {
    const errors = this._errors[field];
    if (!errors?.length) return nothing;
    return html`<p class="form-error" id=${`error-${field}`} data-testid=${`form-error-${field}`} role="alert" tabindex="-1">
      ${icon("warning")}${errors.map((e) => (e.key ? t(e.key, e.params) : e.text)).join(" ")}</p>`;
  }

  _radios(field, options, label, { labelFor = (o) => t(`${field}.${o}`), testid = field } = {}) {
    return html`<fieldset class="field field--radios field--${field}" aria-invalid=${this._errors[field] ? "true" : "false"}>
      <legend class="field__label">${label}</legend>
      <div class="segmented">
        ${options.map((option) => {
          const value = String(option);
          const checked = this._values[field] === value;
          return html`<label class="segmented__option ${checked ? "is-checked" : ""}" data-testid=${`form-${testid}-${value || "none"}`}>
            <input type="radio" name=${field} .value=${value} .checked=${checked} @change=${() => this._set(field, value)}>
            <span>${labelFor(option)}</span>
          </label>`;
        })}
      </div>
      ${this._errorsFor(field)}
    </fieldset>`;
  }

  _vital(field) {
    const range = CLINICAL_RANGES[field];
    const invalid = Boolean(this._errors[field]);
    return html`<label class="field field--vital">
      <span class="field__label">${t(`vital.${field}`)} <span class="muted small">${range.unit}</span></span>
      <input type="text" inputmode=${range.integer ? "numeric" : "decimal"} autocomplete="off" data-testid=${`form-${field}`}
          name=${field} .value=${this._values[field]} aria-invalid=${invalid ? "true" : "false"}
          aria-describedby=${invalid ? `error-${field}` : nothing}
          placeholder=${`${range.min}–${range.max}`} @input=${(e) => this._set(field, e.target.value)}>
      ${this._errorsFor(field)}
    </label>`;
  }

  render() {
    const v = this._values;
    return html`<form class="reservation-form" data-testid="reservation-form" novalidate @submit=${this._submit} aria-label=${t("form.title")}>
      <h2>${t("form.title")}</h2>
      <section class="chosen" data-testid="form-chosen" aria-label=${t("form.chosen")}>
        <h3 class="field__label">${t("form.chosen_count", { n: this.chosen.length, max: MAX_HOSPITALS_PER_REQUEST })}</h3>
        ${this.chosen.length
          ? html`<ul class="chosen__list">${this.chosen.map(
              (row) => html`<li class="chosen__item" data-testid=${`form-chosen-${row.hpid}`}>
                <span><strong>${row.info.name}</strong>
                  ${row.distanceKm !== null ? html`<span class="muted">${formatDistance(row.distanceKm)} · ${t("list.eta", { minutes: row.etaMinutes })}</span>` : nothing}</span>
                <button type="button" class="button button--quiet" data-testid="form-unchoose" @click=${() => this.emit("er-select", { hpid: row.hpid, selected: false })}>
                  ${icon("cross")}${t("form.unchoose")}</button>
              </li>`,
            )}</ul>`
          : html`<p class="muted">${t("form.choose_hint")}</p>`}
        ${this._errorsFor("__hospitals")}
      </section>

      ${this._radios("sex", SEXES, t("form.sex"))}
      ${this._radios("age_band", AGE_BANDS, t("form.age_band"), { testid: "age" })}
      ${this._radios("pre_ktas", ["", ...PRE_KTAS_LEVELS], t("form.pre_ktas"), {
        testid: "pre-ktas",
        labelFor: (o) => (o === "" ? t("pre_ktas.none") : html`<strong>${o}</strong> ${t(`pre_ktas.${o}`)}`),
      })}
      ${this._radios("consciousness", CONSCIOUSNESS, t("form.consciousness"))}

      <fieldset class="field field--vitals">
        <legend class="field__label">${t("form.vitals")} <span class="muted small">${t("form.vitals_hint")}</span></legend>
        <div class="vitals">${VITALS.map((field) => this._vital(field))}</div>
      </fieldset>

      <label class="field">
        <span class="field__label">${t("form.chief_complaint")} <span class="muted small">${v.chief_complaint.length}/${CHIEF_COMPLAINT_MAX}</span></span>
        <input type="text" data-testid="form-chief_complaint" name="chief_complaint" maxlength=${CHIEF_COMPLAINT_MAX}
            .value=${v.chief_complaint} aria-invalid=${this._errors.chief_complaint ? "true" : "false"}
            @input=${(e) => this._set("chief_complaint", e.target.value)}>
        ${this._errorsFor("chief_complaint")}
      </label>

      <label class="field">
        <span class="field__label">${t("form.suspected_category")}</span>
        <select data-testid="form-suspected_category" name="suspected_category" @change=${(e) => this._set("suspected_category", e.target.value)}>
          <option value="" ?selected=${v.suspected_category === ""}>${t("form.category_none")}</option>
          ${SUSPECTED_CATEGORIES.map((n) => html`<option value=${n} ?selected=${v.suspected_category === String(n)}>${categoryLabel(n)}</option>`)}
        </select>
        ${this._errorsFor("suspected_category")}
      </label>

      <label class="field">
        <span class="field__label">${t("form.note")} <span class="muted small">${v.note.length}/${NOTE_MAX}</span></span>
        <textarea data-testid="form-note" name="note" rows="3" maxlength=${NOTE_MAX} .value=${v.note}
            @input=${(e) => this._set("note", e.target.value)}></textarea>
        <span class="hint">${icon("warning")}${t("form.note_hint")}</span>
        ${this._errorsFor("note")}
      </label>

      ${this._errorsFor("__all__")}
      ${this.offline ? html`<p class="notice notice--warning" data-testid="form-offline-note">${icon("offline")}${t("form.offline_note")}</p>` : nothing}
      <button type="submit" class="button button--primary button--wide button--big" data-testid="form-submit" ?disabled=${this.busy}>
        ${icon("send")}${t("form.submit", { n: this.chosen.length })}
      </button>
    </form>`;
  }
}

customElements.define("weer-reservation-form", ReservationForm);
