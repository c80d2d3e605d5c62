// Where the ambulance is: from the browser's geolocation (followed as it moves), or set by
// hand by tapping the map or choosing a 시군구 (the mean position of its ERs).
// Emits "locate" (use geolocation), "pick-toggle" (tap-the-map mode) and "position-change"
// ({position: {lat, lon, source: "sigungu", label}}).
import { html, nothing } from "lit";

import { t, regionName, formatCoordinates } from "../i18n.js";
import { icon } from "./icons.js";
import { LightElement } from "./light-element.js";

export class PositionPicker extends LightElement {
  static properties = {
    position: { attribute: false },
    regions: { attribute: false },
    centres: { attribute: false },
    picking: { type: Boolean },
    geoState: { attribute: false },
    crewName: { attribute: false },
    _region: { state: true },
  };

  constructor() {
    super();
    this.position = null;
    this.regions = [];
    this.centres = [];
    this.picking = false;
    this.geoState = "idle";
    this.crewName = "";
    this._region = "";
  }

  _chooseSigungu(event) {
    const [region, sigungu] = event.target.value.split("|");
    const centre = this.centres.find((c) => c.region_code === region && c.sigungu === sigungu);
    if (!centre) return;
    this.emit("position-change", {
      position: { lat: centre.lat, lon: centre.lon, source: "sigungu", label: `${regionName(centre.region_code, centre.region_name)} ${centre.sigungu}` },
    });
  }

  render() {
    const p = this.position;
    const region = this._region || p?.region_code || "";
    const regions = this.regions.length
      ? this.regions
      : [...new Map(this.centres.map((c) => [c.region_code, { code: c.region_code, name: c.region_name }])).values()];
    const sigungus = this.centres.filter((c) => c.region_code === region);
    return html`<section class="position" data-testid="position" aria-label=${t("position.title")}>
      ${this.crewName ? html`<span class="position__crew" data-testid="crew-name">${icon("bed")}${this.crewName}</span>` : nothing}
      <div class="position__now" data-testid="position-current" data-source=${p?.source ?? "none"}>
        ${icon("location")}
        ${p
          ? html`<span><strong>${t(`position.source.${p.source}`)}</strong> ${p.label ?? formatCoordinates(p.lat, p.lon)}
              ${p.accuracy ? html`<span class="muted small">${t("position.accuracy", { m: Math.round(p.accuracy) })}</span>` : nothing}</span>`
          : html`<span><strong>${t("position.none")}</strong> ${t("position.none_hint")}</span>`}
      </div>
      <div class="position__actions">
        <button type="button" class="button" data-testid="position-locate" @click=${() => this.emit("locate")}
            ?disabled=${this.geoState === "locating"}>
          ${icon("location")}${this.geoState === "locating" ? t("position.locating") : t("position.locate")}
        </button>
        <button type="button" class="button ${this.picking ? "button--selected" : ""}" data-testid="position-pick"
            aria-pressed=${this.picking ? "true" : "false"} @click=${() => this.emit("pick-toggle")}>
          ${icon("pin")}${this.picking ? t("position.picking") : t("position.pick")}
        </button>
        <label class="field field--inline">
          <span class="field__label visually-hidden">${t("position.region")}</span>
          <select data-testid="position-region" @change=${(e) => (this._region = e.target.value)}>
            <option value="" ?selected=${!region}>${t("position.region_choose")}</option>
            ${regions.map((r) => html`<option value=${r.code} ?selected=${r.code === region}>${regionName(r.code, r.name)}</option>`)}
          </select>
        </label>
        <label class="field field--inline">
          <span class="field__label visually-hidden">${t("position.sigungu")}</span>
          <select data-testid="position-sigungu" ?disabled=${!sigungus.length} @change=${this._chooseSigungu}>
            <option value="" selected>${t("position.sigungu_choose")}</option>
            ${sigungus.map((c) => html`<option value=${`${c.region_code}|${c.sigungu}`}>${c.sigungu}</option>`)}
          </select>
        </label>
      </div>
      ${this.geoState === "denied" || this.geoState === "unavailable"
        ? html`<p class="notice notice--warning" data-testid="position-geo-error">${icon("warning")}${t(`position.geo_${this.geoState}`)}</p>`
        : nothing}
    </section>`;
  }
}

customElements.define("weer-position-picker", PositionPicker);
