// Which ERs the crew sees, in which order: a pure function of the board, the position and the
// filters, run again on every change so the list and the map re-sort and re-filter live.
import { distanceKm, etaMinutes } from "./geo.js";

/** Data older than these reads amber ("오래됨"), then red ("매우 오래됨"); `stale`: red too. */
export const OLD_AFTER_SECONDS = 15 * 60;
export const VERY_OLD_AFTER_SECONDS = 60 * 60;

export const SORTS = ["distance", "beds"];

export const DEFAULT_FILTERS = { equipment: [], category: null, minBeds: null, query: "", sort: "distance" };

export function ageLevel(seconds, stale) {
  if (stale) return "stale";
  if (seconds === null || seconds === undefined) return "unknown";
  if (seconds >= VERY_OLD_AFTER_SECONDS) return "very_old";
  if (seconds >= OLD_AFTER_SECONDS) return "old";
  return "fresh";
}

function matchesQuery(info, query) {
  if (!query) return true;
  const needle = query.trim().toLowerCase();
  return `${info.name ?? ""} ${info.address ?? ""}`.toLowerCase().includes(needle);
}

/**
 * [{hpid, info, status, distanceKm, etaMinutes, ageSeconds, ageLevel, acceptance}], filtered
 * and sorted. `acceptance` is for filters.category: true, false, null (not reported) or
 * undefined (not loaded yet); a hospital that explicitly does not accept it is left out.
 */
export function rankHospitals(board, { position = null, filters = DEFAULT_FILTERS } = {}) {
  const rows = [];
  for (const [hpid, info] of board.hospitals) {
    const status = board.status.get(hpid) ?? null;
    const beds = status?.beds ?? {};
    if (!matchesQuery(info, filters.query)) continue;
    if (filters.equipment?.some((name) => beds[name] !== true)) continue;
    if (filters.minBeds !== null && filters.minBeds !== undefined && filters.minBeds !== "") {
      const available = beds.er_general;
      if (typeof available !== "number" || available < Number(filters.minBeds)) continue;
    }
    const acceptance = filters.category ? board.acceptance(hpid, filters.category) : undefined;
    if (filters.category && acceptance === false) continue;
    const km =
      position && typeof info.latitude === "number" && typeof info.longitude === "number"
        ? distanceKm(position.lat, position.lon, info.latitude, info.longitude)
        : null;
    const age = board.ageSeconds(hpid);
    rows.push({
      hpid,
      info,
      status,
      distanceKm: km,
      etaMinutes: etaMinutes(km),
      ageSeconds: age,
      ageLevel: ageLevel(age, status?.stale),
      acceptance,
    });
  }
  const byDistance = (a, b) => (a.distanceKm ?? Infinity) - (b.distanceKm ?? Infinity) || (a.info.name ?? "").localeCompare(b.info.name ?? "", "ko");
  if (filters.sort === "beds") {
    const beds = (row) => (typeof row.status?.beds.er_general === "number" ? row.status.beds.er_general : -Infinity);
    rows.sort((a, b) => beds(b) - beds(a) || byDistance(a, b));
  } else if (position) {
    rows.sort(byDistance);
  } else {
    rows.sort((a, b) => (a.info.region_code ?? "").localeCompare(b.info.region_code ?? "") || byDistance(a, b));
  }
  return rows;
}

/** The 시군구 of every region with a representative point: the mean of its ERs' positions. */
export function sigunguCentres(board) {
  const sums = new Map();
  for (const info of board.hospitals.values()) {
    if (!info.sigungu || typeof info.latitude !== "number" || typeof info.longitude !== "number") continue;
    const key = `${info.region_code}|${info.sigungu}`;
    const s = sums.get(key) ?? { region_code: info.region_code, region_name: info.region_name, sigungu: info.sigungu, lat: 0, lon: 0, n: 0 };
    s.lat += info.latitude;
    s.lon += info.longitude;
    s.n += 1;
    sums.set(key, s);
  }
  return [...sums.values()]
    .map((s) => ({ region_code: s.region_code, region_name: s.region_name, sigungu: s.sigungu, lat: s.lat / s.n, lon: s.lon / s.n }))
    .sort((a, b) => a.sigungu.localeCompare(b.sigungu, "ko"));
}
