// The crew's picture of every ER: names and places from GET /api/hospitals, live values from
// the `beds.all` stream (snapshot, then beds.changed / beds.stale / acceptance.changed /
// announcements.changed), and severe-illness acceptance and ER messages from
// GET /api/hospitals/{hpid} for the rows being looked at (the list and the snapshots carry
// neither). It dispatches "change" (coalesced to one per frame) whenever anything shown
// changes, and remembers for a few seconds what changed (old → new) so rows can flash it.
//
// Ages are computed on the server's clock: every snapshot (hvidate + data_age_seconds) and
// every event (ts) updates the estimate of server − client time, so a tablet whose clock is
// wrong still reads "3분 전 갱신" correctly.
import { WATCHED_FIELDS } from "./bed-fields.js";

export const FLASH_MS = 6000;
const DETAIL_CONCURRENCY = 4;
const DETAIL_RETRY_MS = 30_000;

function parseTime(value) {
  if (!value) return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : ms;
}

function knownBeds(beds) {
  const out = {};
  for (const [name, value] of Object.entries(beds ?? {})) if (value !== null && value !== undefined) out[name] = value;
  return out;
}

const INFO_FIELDS = ["hpid", "name", "address", "region_code", "region_name", "sigungu", "main_phone", "er_phone", "latitude", "longitude", "emergency_class", "emergency_class_name"];

export class HospitalBoard extends EventTarget {
  constructor({ now = () => Date.now(), fetchDetail = null } = {}) {
    super();
    this.now = now;
    this.fetchDetail = fetchDetail; // async (hpid) => HospitalDetailOut
    this.hospitals = new Map(); // hpid -> info
    this.status = new Map(); // hpid -> {beds, hvidateMs, stale, held, source}
    this.details = new Map(); // hpid -> {acceptances: {cat: bool|null}, announcements: [], complete, fetchedAt}
    this.flashes = new Map(); // hpid -> Map(field -> {old, new, until})
    this.skewMs = 0;
    this.liveAt = null; // client time of the last live update applied
    this.savedAt = null; // when the restored copy was saved (null: nothing restored)
    this._pending = false;
    this._flashTimer = null;
    this._detailQueue = [];
    this._detailActive = 0;
    this._detailFailedAt = new Map();
  }

  // --- sources -------------------------------------------------------------------------

  /** GET /api/hospitals results: names, places; their status only where we have none yet. */
  setInfo(results) {
    for (const hospital of results) {
      const info = {};
      for (const key of INFO_FIELDS) info[key] = hospital[key] ?? null;
      this.hospitals.set(hospital.hpid, info);
      const current = this.status.get(hospital.hpid);
      if (hospital.status && (!current || current.source !== "live")) {
        this.status.set(hospital.hpid, {
          beds: knownBeds(hospital.status.beds),
          hvidateMs: parseTime(hospital.status.hvidate),
          stale: Boolean(hospital.status.stale),
          held: hospital.status.held ?? 0,
          source: "rest",
        });
        this._learnSkew(hospital.status.hvidate, hospital.status.data_age_seconds);
      }
    }
    this._changed();
  }

  /** A `beds.*` snapshot replaces every status; differences from what we showed flash. */
  applySnapshot(data, { reason } = {}) {
    const seen = new Set();
    for (const item of data?.hospitals ?? []) {
      seen.add(item.hpid);
      const previous = this.status.get(item.hpid);
      const next = {
        beds: knownBeds(item.beds),
        hvidateMs: parseTime(item.hvidate),
        stale: Boolean(item.stale),
        held: item.held ?? 0,
        source: "live",
      };
      if (previous && reason !== "initial") this._flashDifferences(item.hpid, previous, next);
      this.status.set(item.hpid, next);
      this._learnSkew(item.hvidate, item.data_age_seconds);
    }
    for (const hpid of [...this.status.keys()]) if (!seen.has(hpid)) this.status.delete(hpid);
    if (reason && reason !== "initial") {
      // Events were missed: acceptances and messages may be out of date too.
      for (const detail of this.details.values()) detail.complete = false;
    }
    this.liveAt = this.now();
    this._changed();
  }

  applyEvent(event) {
    if (typeof event.ts === "number") this.skewMs = event.ts - this.now();
    const data = event.data ?? {};
    switch (event.type) {
      case "beds.changed":
        this._bedsChanged(data);
        break;
      case "beds.stale":
        for (const hpid of data.hpids ?? []) {
          const status = this.status.get(hpid);
          if (status) status.stale = Boolean(data.stale);
        }
        break;
      case "acceptance.changed": {
        const detail = this._detail(data.hpid);
        for (const [category, change] of Object.entries(data.changes ?? {})) detail.acceptances[category] = change.new;
        this._flash(data.hpid, "acceptance", null, null);
        break;
      }
      case "announcements.changed":
        this._announcementsChanged(data);
        break;
      default:
        return;
    }
    this.liveAt = this.now();
    this._changed();
  }

  _bedsChanged({ hpid, changes = {}, hvidate }) {
    let status = this.status.get(hpid);
    if (!status) {
      status = { beds: {}, hvidateMs: null, stale: false, held: 0, source: "live" };
      this.status.set(hpid, status);
    }
    for (const [field, change] of Object.entries(changes)) {
      const old = field === "held" ? status.held : status.beds[field];
      if (field === "held") status.held = change.new ?? 0;
      else if (change.new === null || change.new === undefined) delete status.beds[field];
      else status.beds[field] = change.new;
      if (WATCHED_FIELDS.has(field)) this._flash(hpid, field, old ?? change.old ?? null, change.new ?? null);
    }
    if (hvidate) status.hvidateMs = parseTime(hvidate);
    status.source = "live";
  }

  _announcementsChanged({ hpid, added = [], removed = [] }) {
    const detail = this._detail(hpid);
    if (removed.length) {
      const before = detail.announcements.length;
      detail.announcements = detail.announcements.filter((a) => !removed.includes(a.id));
      // Messages fetched over REST carry no id: a removal we cannot match means refetch.
      if (detail.announcements.length === before && detail.announcements.some((a) => !a.id)) detail.complete = false;
    }
    for (const item of added) {
      const key = signature(item);
      detail.announcements = detail.announcements.filter((a) => a.id !== item.id && signature(a) !== key);
      detail.announcements.push(item);
    }
    this._flash(hpid, "announcements", null, null);
    if (!detail.complete) this.ensureDetails([hpid]);
  }

  // --- details (acceptance and ER messages) ---------------------------------------------

  _detail(hpid) {
    let detail = this.details.get(hpid);
    if (!detail) {
      detail = { acceptances: {}, announcements: [], complete: false, fetchedAt: null };
      this.details.set(hpid, detail);
    }
    return detail;
  }

  /** Fetch acceptance and messages of these hospitals unless already complete. */
  ensureDetails(hpids) {
    if (!this.fetchDetail) return;
    const now = this.now();
    for (const hpid of hpids) {
      const detail = this.details.get(hpid);
      if (detail?.complete || detail?.loading) continue;
      if (now - (this._detailFailedAt.get(hpid) ?? -Infinity) < DETAIL_RETRY_MS) continue;
      this._detail(hpid).loading = true;
      this._detailQueue.push(hpid);
    }
    this._pumpDetails();
  }

  _pumpDetails() {
    while (this._detailActive < DETAIL_CONCURRENCY && this._detailQueue.length) {
      const hpid = this._detailQueue.shift();
      this._detailActive += 1;
      this.fetchDetail(hpid)
        .then((answer) => {
          const detail = this._detail(hpid);
          detail.acceptances = {};
          for (const a of answer.acceptances ?? []) detail.acceptances[String(a.category)] = a.accepts;
          detail.announcements = (answer.announcements ?? []).map((a) => ({ ...a }));
          detail.complete = true;
          detail.fetchedAt = this.now();
          this._detailFailedAt.delete(hpid);
        })
        .catch(() => this._detailFailedAt.set(hpid, this.now()))
        .finally(() => {
          this._detail(hpid).loading = false;
          this._detailActive -= 1;
          this._changed();
          this._pumpDetails();
        });
    }
  }

  // --- reading -------------------------------------------------------------------------

  /** Seconds since the hospital's own last input, on the server's clock (null: unknown). */
  ageSeconds(hpid) {
    const status = this.status.get(hpid);
    if (!status?.hvidateMs) return null;
    return Math.max(0, Math.round((this.now() + this.skewMs - status.hvidateMs) / 1000));
  }

  /** true / false / null (not reported) / undefined (not loaded yet). */
  acceptance(hpid, category) {
    const detail = this.details.get(hpid);
    const value = detail?.acceptances[String(category)];
    if (value !== undefined) return value;
    return detail?.complete ? null : undefined;
  }

  announcements(hpid) {
    return this.details.get(hpid)?.announcements ?? [];
  }

  detailsLoaded(hpid) {
    return Boolean(this.details.get(hpid)?.complete);
  }

  /** {old, new} of a field that changed less than FLASH_MS ago, else null. */
  flash(hpid, field) {
    const entry = this.flashes.get(hpid)?.get(field);
    return entry && entry.until > this.now() ? entry : null;
  }

  hasFlash(hpid) {
    const fields = this.flashes.get(hpid);
    if (!fields) return false;
    const now = this.now();
    for (const entry of fields.values()) if (entry.until > now) return true;
    return false;
  }

  // --- persistence (the page keeps a copy in IndexedDB for a reload offline) -------------

  toSaved() {
    return {
      version: 1,
      savedAt: this.now() + this.skewMs,
      skewMs: this.skewMs,
      hospitals: [...this.hospitals.values()],
      status: [...this.status.entries()].map(([hpid, s]) => [hpid, { beds: s.beds, hvidateMs: s.hvidateMs, stale: s.stale, held: s.held }]),
      details: [...this.details.entries()]
        .filter(([, d]) => d.complete || Object.keys(d.acceptances).length || d.announcements.length)
        .map(([hpid, d]) => [hpid, { acceptances: d.acceptances, announcements: d.announcements }]),
    };
  }

  restore(saved) {
    if (!saved || saved.version !== 1) return false;
    this.skewMs = saved.skewMs ?? 0;
    this.savedAt = saved.savedAt ?? null;
    for (const info of saved.hospitals ?? []) if (!this.hospitals.has(info.hpid)) this.hospitals.set(info.hpid, info);
    for (const [hpid, s] of saved.status ?? []) if (!this.status.has(hpid)) this.status.set(hpid, { ...s, source: "saved" });
    for (const [hpid, d] of saved.details ?? []) {
      if (!this.details.has(hpid)) this.details.set(hpid, { acceptances: d.acceptances ?? {}, announcements: d.announcements ?? [], complete: false, fetchedAt: null });
    }
    this._changed();
    return true;
  }

  // --- internals -----------------------------------------------------------------------

  _learnSkew(hvidate, ageSeconds) {
    const hvidateMs = parseTime(hvidate);
    if (hvidateMs !== null && typeof ageSeconds === "number") this.skewMs = hvidateMs + ageSeconds * 1000 - this.now();
  }

  _flashDifferences(hpid, previous, next) {
    for (const field of WATCHED_FIELDS) {
      const old = field === "held" ? previous.held : previous.beds[field];
      const value = field === "held" ? next.held : next.beds[field];
      if ((old ?? null) !== (value ?? null)) this._flash(hpid, field, old ?? null, value ?? null);
    }
  }

  _flash(hpid, field, old, value) {
    let fields = this.flashes.get(hpid);
    if (!fields) {
      fields = new Map();
      this.flashes.set(hpid, fields);
    }
    const earlier = fields.get(field);
    const until = this.now() + FLASH_MS;
    // Two changes within the flash keep the first old value ("6 → 4", not "5 → 4"), unless
    // they cancel out: then the latest change shows ("1 → 0", not "0 → 0").
    const first = earlier && earlier.until > this.now() ? earlier.old : old;
    const from = first === value && field !== "acceptance" && field !== "announcements" ? old : first;
    fields.set(field, { old: from, new: value, until });
    this._scheduleFlashEnd();
  }

  _scheduleFlashEnd() {
    if (this._flashTimer) return;
    const tick = () => {
      this._flashTimer = null;
      const now = this.now();
      let next = Infinity;
      for (const [hpid, fields] of this.flashes) {
        for (const [field, entry] of fields) {
          if (entry.until <= now) fields.delete(field);
          else next = Math.min(next, entry.until);
        }
        if (!fields.size) this.flashes.delete(hpid);
      }
      this._changed();
      if (next !== Infinity) this._flashTimer = unref(setTimeout(tick, next - now + 20));
    };
    this._flashTimer = unref(setTimeout(tick, FLASH_MS + 20));
  }

  _changed() {
    if (this._pending) return;
    this._pending = true;
    const fire = () => {
      this._pending = false;
      this.dispatchEvent(new Event("change"));
    };
    if (typeof requestAnimationFrame === "function" && !globalThis.document?.hidden) requestAnimationFrame(fire);
    else setTimeout(fire, 0);
  }
}

/** Node (tests) must not wait for a flash to end; browsers' timers have no unref. */
function unref(timer) {
  timer?.unref?.();
  return timer;
}

function signature(a) {
  return [a.message_type, a.disease_code, a.message, a.starts_at].join("\u0001");
}
