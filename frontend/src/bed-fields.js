// Which bed fields the pages show and how a value reads. Field names: docs/api.md § Bed
// fields. A value is a number (negative: over capacity), true/false (equipment), or absent /
// null: unknown, which is shown as "—" and never as 0.

/** Equipment the crew can filter on and sees in each row, in the order. */
export const EQUIPMENT = ["ct", "mri", "angio", "ventilator", "ecmo", "crrt", "incubator"];

/** Counts shown in a row besides ER general beds: [field, i18n key]. */
export const ROW_COUNTS = ["er_pediatric", "er_negative_isolation", "er_general_isolation"];

/** The fields whose change flashes in a row (and in the ER's own counts). */
export const WATCHED_FIELDS = new Set(["er_general", "er_general_capacity", ...ROW_COUNTS, ...ROW_COUNTS.map((f) => `${f}_capacity`), ...EQUIPMENT, "held"]);

export function known(value) {
  return value !== null && value !== undefined;
}

/**
 * How a count reads: {kind: "unknown"|"over"|"none"|"available", text parts} for the
 * i18n layer. `capacity` may be unknown too.
 */
export function countState(value, capacity) {
  if (!known(value) || typeof value !== "number") return { kind: "unknown", value: null, capacity: known(capacity) ? capacity : null };
  if (value < 0) return { kind: "over", value, over: -value, capacity: known(capacity) ? capacity : null };
  if (value === 0) return { kind: "none", value, capacity: known(capacity) ? capacity : null };
  return { kind: "available", value, capacity: known(capacity) ? capacity : null };
}

export function flagState(value) {
  if (value === true) return "yes";
  if (value === false) return "no";
  return "unknown";
}
