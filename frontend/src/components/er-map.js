// The crew's map: South Korea's outline (built into korea.json, so no tile server is needed),
// real tiles only when MAP_TILE_URL is configured, one marker per listed ER showing its ER
// beds as text (never colour alone), and the ambulance's position. In "pick" mode a tap on
// the map sets the position. Emits "position-pick" ({lat, lon}) and "er-focus" ({hpid}).
import { html } from "lit";
import { map as leafletMap, geoJSON, marker, divIcon, circleMarker, tileLayer, layerGroup, latLngBounds } from "leaflet/dist/leaflet-src.esm.js";

import { countState } from "../bed-fields.js";
import { assetUrl, config } from "../config.js";
import { t } from "../i18n.js";
import { countText } from "./bed-count.js";
import { LightElement } from "./light-element.js";

const KOREA_CENTRE = [36.4, 127.8];
const KOREA_ZOOM = 7;
const POSITION_ZOOM = 12;
const MAX_MARKERS = 300;

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

export class ErMap extends LightElement {
  static properties = {
    rows: { attribute: false },
    position: { attribute: false },
    picking: { type: Boolean },
    selected: { attribute: false },
    focus: { attribute: false },
  };

  constructor() {
    super();
    this.rows = [];
    this.position = null;
    this.picking = false;
    this.selected = [];
    this.focus = null;
    this._markers = new Map(); // hpid -> {marker, key}
    this._centredOn = null;
  }

  render() {
    return html`<div class="er-map ${this.picking ? "is-picking" : ""}" data-testid="er-map">
      <div class="er-map__canvas" role="application" aria-label=${t("map.title")}></div>
      ${this.picking ? html`<p class="er-map__hint" data-testid="map-pick-hint" role="status">${t("map.pick_hint")}</p>` : ""}
    </div>`;
  }

  firstUpdated() {
    const canvas = this.querySelector(".er-map__canvas");
    this._map = leafletMap(canvas, { center: KOREA_CENTRE, zoom: KOREA_ZOOM, zoomControl: true, attributionControl: Boolean(config.map_tile_url) });
    if (config.map_tile_url) tileLayer(config.map_tile_url, { maxZoom: 19, attribution: config.map_tile_attribution ?? "" }).addTo(this._map);
    this._outline = null;
    fetch(assetUrl("korea.json"))
      .then((r) => (r.ok ? r.json() : null))
      .then((outline) => {
        if (!outline || !this._map) return;
        this._outline = geoJSON(outline, { interactive: false, style: { color: "#4b5563", weight: 1.5, fillColor: "#e5e7eb", fillOpacity: config.map_tile_url ? 0 : 1 } }).addTo(this._map);
        this._outline.bringToBack();
      })
      .catch(() => {});
    this._layer = layerGroup().addTo(this._map);
    this._map.on("click", (event) => {
      if (this.picking) this.emit("position-pick", { lat: event.latlng.lat, lon: event.latlng.lng });
    });
    this._resize = new ResizeObserver(() => this._map.invalidateSize());
    this._resize.observe(canvas);
    this._sync();
  }

  disconnectedCallback() {
    super.disconnectedCallback();
    this._resize?.disconnect();
  }

  updated(changed) {
    if (this._map) this._sync(changed);
  }

  _sync(changed = new Map()) {
    this._syncMarkers();
    this._syncPosition();
    if (changed.has("focus") && this.focus) {
      const row = this.rows.find((r) => r.hpid === this.focus.hpid);
      if (row && typeof row.info.latitude === "number") this._map.setView([row.info.latitude, row.info.longitude], Math.max(this._map.getZoom(), 13));
    }
  }

  _syncMarkers() {
    const shown = this.rows.filter((r) => typeof r.info.latitude === "number" && typeof r.info.longitude === "number").slice(0, MAX_MARKERS);
    const keep = new Set();
    for (const row of shown) {
      keep.add(row.hpid);
      const beds = row.status?.beds ?? {};
      const kind = countState(beds.er_general).kind;
      const selected = this.selected.includes(row.hpid);
      const label = countText(beds.er_general);
      const key = `${label}|${kind}|${selected}|${row.ageLevel}`;
      const existing = this._markers.get(row.hpid);
      if (existing && existing.key === key) continue;
      const icon = divIcon({
        className: "map-marker-wrap",
        html: `<span class="map-marker map-marker--${kind} ${selected ? "is-selected" : ""} map-marker--age-${row.ageLevel}" data-testid="map-marker-${escapeHtml(row.hpid)}">${selected ? "✓ " : ""}${row.ageLevel === "very_old" || row.ageLevel === "stale" ? "⚠ " : ""}${escapeHtml(label)}</span>`,
        iconSize: null,
      });
      if (existing) {
        existing.marker.setIcon(icon);
        existing.key = key;
      } else {
        const m = marker([row.info.latitude, row.info.longitude], { icon, title: row.info.name, alt: row.info.name, keyboard: true, riseOnHover: true })
          .on("click", () => this.emit("er-focus", { hpid: row.hpid, fromMap: true }))
          .addTo(this._layer);
        this._markers.set(row.hpid, { marker: m, key });
      }
    }
    for (const [hpid, { marker: m }] of this._markers) {
      if (!keep.has(hpid)) {
        this._layer.removeLayer(m);
        this._markers.delete(hpid);
      }
    }
  }

  _syncPosition() {
    const p = this.position;
    if (!p) return;
    const latlng = [p.lat, p.lon];
    if (!this._positionMarker) {
      this._positionMarker = circleMarker(latlng, { radius: 10, color: "#1d4ed8", weight: 4, fillColor: "#60a5fa", fillOpacity: 0.9, interactive: false })
        .bindTooltip(t("map.you_are_here"), { permanent: true, direction: "top", offset: [0, -10], className: "map-you" })
        .addTo(this._map);
    } else {
      this._positionMarker.setLatLng(latlng);
    }
    // Centre once per manual choice or the first GPS fix; following GPS does not pan.
    const key = p.source === "gps" ? "gps" : `${p.source}:${p.lat},${p.lon}`;
    if (this._centredOn !== key) {
      this._centredOn = key;
      const near = this.rows.filter((r) => typeof r.distanceKm === "number").slice(0, 5);
      if (near.length) {
        const bounds = latLngBounds([latlng, ...near.map((r) => [r.info.latitude, r.info.longitude])]);
        this._map.fitBounds(bounds, { padding: [40, 40], maxZoom: 14 });
      } else {
        this._map.setView(latlng, POSITION_ZOOM);
      }
    }
  }
}

customElements.define("weer-er-map", ErMap);
