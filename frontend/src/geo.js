// Straight-line distance and ETA, the same way the server computes them for a reservation
// (domain/geo.py distance_km; domain/services/reservations.py: max(1, round(d / 40 km/h · 60))).

export const EARTH_RADIUS_KM = 6371.0088;
export const ETA_KMH = 40; // settings.RESERVATION_ETA_KMH default

export function distanceKm(lat1, lon1, lat2, lon2) {
  const rad = Math.PI / 180;
  const phi1 = lat1 * rad;
  const phi2 = lat2 * rad;
  const dphi = phi2 - phi1;
  const dlmb = (lon2 - lon1) * rad;
  const a = Math.sin(dphi / 2) ** 2 + Math.cos(phi1) * Math.cos(phi2) * Math.sin(dlmb / 2) ** 2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.sqrt(a));
}

export function etaMinutes(km) {
  return km == null ? null : Math.max(1, Math.round((km / ETA_KMH) * 60));
}
