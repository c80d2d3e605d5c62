// The crew's filters: needed equipment, severe-illness category, minimum ER beds, name search,
// and the sort. Emits "filters-change" with the whole filter object on every change.
import { html } from "lit";

import { EQUIPMENT } from "../bed-fields.js";
import { SORTS } from "../er-ranking.js";
import { t, categoryLabel } from "../i18n.js";
import { SUSPECTED_CATEGORIES } from "../severe-illness.js";
import { icon } from "./icons.js";
import { LightElement } from "./light-element.js";

export class ErFilters extends LightElement {
  static properties = { filters: { attribute: false } };

  constructor() {
    super();
    this.filters = null;
  }

  _set(change) {
    this.emit("filters-change", { filters: { ...this.filters, ...change } });
  }

  _toggleEquipment(name) {
    const current = this.filters.equipment;
    this._set({ equipment: current.includes(name) ? current.filter((n) => n !== name) : [...current, name] });
  }

  _minBeds(delta) {
    const value = Math.max(0, (Number(this.filters.minBeds) || 0) + delta);
    this._set({ minBeds: value === 0 ? null : value });
  }

  render() {
    const f = this.filters;
    return html`<form class="filters" data-testid="filters" @submit=${(e) => e.preventDefault()} aria-label=${t("filters.title")}>
      <label class="field field--search">
        <span class="field__label">${t("filters.query")}</span>
        <input type="search" data-testid="filter-query" .value=${f.query} placeholder=${t("filters.query_placeholder")}
            autocomplete="off" @input=${(e) => this._set({ query: e.target.value })}>
      </label>
      <label class="field">
        <span class="field__label">${t("filters.category")}</span>
        <select data-testid="filter-category" @change=${(e) => this._set({ category: e.target.value ? Number(e.target.value) : null })}>
          <option value="" ?selected=${!f.category}>${t("filters.category_any")}</option>
          ${SUSPECTED_CATEGORIES.map((n) => html`<option value=${n} ?selected=${f.category === n}>${categoryLabel(n)}</option>`)}
        </select>
      </label>
      <div class="field field--stepper">
        <span class="field__label" id="min-beds-label">${t("filters.min_beds")}</span>
        <div class="stepper" role="group" aria-labelledby="min-beds-label">
          <button type="button" class="button" data-testid="filter-min-beds-down" aria-label=${t("filters.less")} @click=${() => this._minBeds(-1)}>−</button>
          <output data-testid="filter-min-beds" aria-live="polite">${f.minBeds ? t("filters.min_beds_value", { n: f.minBeds }) : t("filters.min_beds_any")}</output>
          <button type="button" class="button" data-testid="filter-min-beds-up" aria-label=${t("filters.more")} @click=${() => this._minBeds(1)}>+</button>
        </div>
      </div>
      <label class="field">
        <span class="field__label">${t("filters.sort")}</span>
        <select data-testid="filter-sort" @change=${(e) => this._set({ sort: e.target.value })}>
          ${SORTS.map((s) => html`<option value=${s} ?selected=${f.sort === s}>${t(`filters.sort_${s}`)}</option>`)}
        </select>
      </label>
      <fieldset class="field field--equipment">
        <legend class="field__label">${t("filters.equipment")}</legend>
        <div class="chips">
          ${EQUIPMENT.map((name) => {
            const on = f.equipment.includes(name);
            return html`<button type="button" class="chip ${on ? "is-on" : ""}" aria-pressed=${on ? "true" : "false"}
                data-testid=${`filter-equipment-${name}`} @click=${() => this._toggleEquipment(name)}>
              ${on ? icon("check") : ""}${t(`equipment.${name}`)}</button>`;
          })}
        </div>
      </fieldset>
    </form>`;
  }
}

customElements.define("weer-er-filters", ErFilters);
