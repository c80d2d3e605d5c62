// Unit tests of the pages' pure modules: the condition form, ranking and ages, the hospital board, the reservation book, geometry.
import { test } from "node:test";
import assert from "node:assert/strict";

// As frontend/tests/pages.test.js this reads ../src; WEER_SRC points elsewhere.
const SRC = process.env.WEER_SRC ?? new URL("../src", import.meta.url).pathname;
const { conditionFromForm } = await import(`${SRC}/clinical.js`);
const { rankHospitals, ageLevel } = await import(`${SRC}/er-ranking.js`);
const { HospitalBoard } = await import(`${SRC}/hospital-board.js`);
const { ReservationBook } = await import(`${SRC}/reservation-book.js`);
const { etaMinutes, distanceKm } = await import(`${SRC}/geo.js`);

const base = { sex: "female", age_band: "60_69", consciousness: "verbal", chief_complaint: "흉통" };

test("a valid condition converts strings to the API's types", () => {
  const { condition, errors } = conditionFromForm({ ...base, systolic_bp: "150", diastolic_bp: "90", temperature: "37.8", spo2: "", pre_ktas: "2", suspected_category: "1" });
  assert.deepEqual(errors, {});
  assert.equal(condition.systolic_bp, 150);
  assert.equal(condition.temperature, "37.8");
  assert.equal(condition.spo2, null);
  assert.equal(condition.pre_ktas, 2);
  assert.equal(condition.suspected_category, 1);
});

test("out-of-range, non-integer, too many decimals and diastolic above systolic are refused", () => {
  const { errors } = conditionFromForm({ ...base, spo2: "101", pulse: "80.5", temperature: "37.85", systolic_bp: "100", diastolic_bp: "120" });
  assert.equal(errors.spo2[0].key, "form.error.range");
  assert.equal(errors.pulse[0].key, "form.error.integer");
  assert.equal(errors.temperature[0].key, "form.error.decimals");
  assert.equal(errors.diastolic_bp[0].key, "form.error.diastolic_above_systolic");
});

test("boundary values of the clinical ranges are accepted", () => {
  const { errors } = conditionFromForm({ ...base, systolic_bp: "300", diastolic_bp: "0", pulse: "0", temperature: "25.0", respiratory_rate: "80", spo2: "100" });
  assert.deepEqual(errors, {});
});

test("required fields and Pre-KTAS outside 1–5 are refused", () => {
  const { errors } = conditionFromForm({ pre_ktas: "6" });
  for (const f of ["sex", "age_band", "consciousness", "chief_complaint", "pre_ktas"]) assert.ok(errors[f], f);
});

test("ETA matches the server's rounding at 40 km/h", () => {
  assert.equal(etaMinutes(8.41), 13);
  assert.equal(etaMinutes(0.1), 1);
  assert.ok(Math.abs(distanceKm(37.5665, 126.978, 37.4929, 127.0463) - 10.1) < 0.2);
});

function board() {
  let now = 1_000_000;
  const b = new HospitalBoard({ now: () => now });
  b.setInfo([
    { hpid: "A", name: "가까운", latitude: 37.56, longitude: 126.98, region_code: "11", status: null },
    { hpid: "B", name: "먼", latitude: 37.40, longitude: 127.10, region_code: "11", status: null },
  ]);
  b.applySnapshot({ hospitals: [
    { hpid: "A", hvidate: new Date(now - 60_000).toISOString(), data_age_seconds: 60, stale: false, held: 0, beds: { er_general: 1, ct: true } },
    { hpid: "B", hvidate: new Date(now - 60_000).toISOString(), data_age_seconds: 60, stale: false, held: 0, beds: { er_general: 5 } },
  ] }, { reason: "initial" });
  return { b, advance: (ms) => (now += ms) };
}

test("nearest first; a beds.changed re-filters and flashes old → new, then the flash ends", () => {
  const { b, advance } = board();
  const position = { lat: 37.5665, lon: 126.978 };
  assert.deepEqual(rankHospitals(b, { position, filters: { equipment: [], category: null, minBeds: null, query: "", sort: "distance" } }).map((r) => r.hpid), ["A", "B"]);
  const filters = { equipment: [], category: null, minBeds: 2, query: "", sort: "distance" };
  assert.deepEqual(rankHospitals(b, { position, filters }).map((r) => r.hpid), ["B"]);
  b.applyEvent({ type: "beds.changed", ts: 1_000_000, data: { hpid: "A", changes: { er_general: { old: 1, new: 3 } } } });
  assert.deepEqual(rankHospitals(b, { position, filters }).map((r) => r.hpid), ["A", "B"]);
  assert.deepEqual({ ...b.flash("A", "er_general"), until: 0 }, { old: 1, new: 3, until: 0 });
  advance(10_000);
  assert.equal(b.flash("A", "er_general"), null);
});

test("an unknown value (absent) never counts as zero or as available", () => {
  const { b } = board();
  b.applyEvent({ type: "beds.changed", ts: 1_000_000, data: { hpid: "A", changes: { er_general: { old: 1, new: null } } } });
  assert.equal("er_general" in b.status.get("A").beds, false);
  const rows = rankHospitals(b, { filters: { equipment: [], category: null, minBeds: 0, query: "", sort: "distance" } });
  assert.deepEqual(rows.map((r) => r.hpid), ["B"]);
});

test("ages run on the server's clock; stale regions read stale", () => {
  const { b, advance } = board();
  advance(120_000);
  assert.equal(b.ageSeconds("A"), 180);
  assert.equal(ageLevel(20 * 60, false), "old");
  b.applyEvent({ type: "beds.stale", ts: 1_120_000, data: { region: "11", stale: true, hpids: ["A"] } });
  assert.equal(b.status.get("A").stale, true);
});

test("a reservation event replaces the copy; an older API answer does not undo it", () => {
  const book = new ReservationBook();
  const r = { id: 1, status: "pending", group: 9, created_at: "2026-01-01T00:00:00Z", acknowledged_at: null };
  book.applySnapshot({ reservations: [r] });
  book.applyEvent({ type: "reservation.acknowledged", ts: 0, data: { ...r, acknowledged_at: "2026-01-01T00:00:05Z" } });
  book.upsert(r);
  assert.equal(book.get(1).acknowledged_at, "2026-01-01T00:00:05Z");
});

test("an open reservation missing from a new snapshot is fetched, not dropped", async () => {
  const fetched = [];
  const book = new ReservationBook({ fetchOne: async (id) => (fetched.push(id), { id, status: "expired", group: 9, created_at: "2026-01-01T00:00:00Z", closed_at: "2026-01-01T00:05:00Z" }) });
  book.applySnapshot({ reservations: [{ id: 1, status: "pending", group: 9, created_at: "2026-01-01T00:00:00Z" }] });
  book.applySnapshot({ reservations: [] });
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(fetched, [1]);
  assert.equal(book.get(1).status, "expired");
});

test("the outbox keeps one Idempotency-Key through retries and sends once it succeeds", async () => {
  const { Outbox } = await import(`${SRC}/outbox.js`);
  const { NetworkError, ApiError } = await import(`${SRC}/api.js`);
  const store = new Map();
  const storage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v), removeItem: (k) => store.delete(k) };
  const keys = [];
  let online = false;
  const outbox = new Outbox({ storage, locks: null, userId: 42, send: async (entry) => {
    keys.push(entry.key);
    if (!online) throw new NetworkError(new TypeError("offline"));
    return [{ id: 1 }];
  } });
  const sent = [];
  outbox.addEventListener("sent", (e) => sent.push(e.detail.reservations));
  outbox.add({ hospitals: ["A"], condition: {} });
  await outbox.flush();
  await outbox.flush();
  assert.equal(outbox.entries().length, 1);
  online = true;
  await outbox.flush();
  await outbox.flush();
  assert.equal(outbox.entries().length, 0);
  assert.equal(sent.length, 1);
  assert.equal(new Set(keys).size, 1);
  assert.ok(keys.length >= 2);
  // a refused request (4xx) leaves the outbox and is reported
  const failed = [];
  outbox.addEventListener("failed", (e) => failed.push(e.detail.error.code));
  outbox.send = async () => { throw new ApiError({ status: 400, code: "validation_error", message: "x" }); };
  outbox.add({ hospitals: ["A"], condition: {} });
  await outbox.flush();
  assert.deepEqual(failed, ["validation_error"]);
  assert.equal(outbox.entries().length, 0);
  clearTimeout(outbox._timer);
});
