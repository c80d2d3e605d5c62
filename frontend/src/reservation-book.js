// Reservations as one stream shows them (`crew.<id>` for a crew, `hospital.<hpid>` for an
// ER): every reservation event carries the whole current state, which replaces our copy.
// A snapshot holds only the open ones (pending, approved); one we held open that the snapshot
// no longer has was closed while we were away, so its final state is fetched
// (GET /api/reservations/{id}) rather than silently dropped.
//
// Dispatches "change" after any update and "reservation" (detail {type, reservation,
// previous}) for each event, so pages can sound alerts on the kinds they care about.

export const OPEN_STATUSES = new Set(["pending", "approved"]);

const TIMESTAMPS = ["created_at", "acknowledged_at", "reminded_at", "decided_at", "hold_released_at", "closed_at"];

/** The latest moment a reservation's state records: orders copies from different sources. */
export function stateTime(reservation) {
  let latest = 0;
  for (const field of TIMESTAMPS) {
    const ms = reservation[field] ? Date.parse(reservation[field]) : 0;
    if (ms > latest) latest = ms;
  }
  return latest;
}

export function isOpen(reservation) {
  return OPEN_STATUSES.has(reservation.status);
}

export class ReservationBook extends EventTarget {
  constructor({ fetchOne = null, now = () => Date.now() } = {}) {
    super();
    this.fetchOne = fetchOne; // async (id) => reservation
    this.now = now;
    this.reservations = new Map(); // id -> reservation
    this.closedAt = new Map(); // id -> client time we learned it closed (this session)
    this.lastType = new Map(); // id -> type of the last event seen for it
    this.loaded = false;
    this.skewMs = 0; // server − client clock, from events' ts: countdowns run on server time
  }

  /** Now on the server's clock (ms). */
  serverNow() {
    return this.now() + this.skewMs;
  }

  applySnapshot(data) {
    const seen = new Set();
    for (const reservation of data?.reservations ?? []) {
      seen.add(reservation.id);
      this._put(reservation);
    }
    for (const [id, reservation] of this.reservations) {
      if (!seen.has(id) && isOpen(reservation)) this._refetch(id);
    }
    this.loaded = true;
    this.dispatchEvent(new Event("change"));
  }

  applyEvent(event) {
    const reservation = event.data;
    if (!reservation || typeof reservation.id !== "number") return;
    if (typeof event.ts === "number") this.skewMs = event.ts - this.now();
    const previous = this.reservations.get(reservation.id) ?? null;
    this._put(reservation);
    this.lastType.set(reservation.id, event.type);
    this.dispatchEvent(new CustomEvent("reservation", { detail: { type: event.type, reservation, previous } }));
    this.dispatchEvent(new Event("change"));
  }

  /** A copy from an API answer: kept unless the stream already gave us a later state. */
  upsert(reservation) {
    const current = this.reservations.get(reservation.id);
    if (current && stateTime(current) > stateTime(reservation)) return current;
    const previous = current ?? null;
    this._put(reservation);
    if (!previous || previous.status !== reservation.status || previous.acknowledged_at !== reservation.acknowledged_at) {
      this.dispatchEvent(new CustomEvent("reservation", { detail: { type: "api", reservation, previous } }));
    }
    this.dispatchEvent(new Event("change"));
    return reservation;
  }

  get(id) {
    return this.reservations.get(id) ?? null;
  }

  all() {
    return [...this.reservations.values()];
  }

  open() {
    return this.all().filter(isOpen).sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at));
  }

  /** Closed in this session less than `withinMs` ago, newest first. */
  recentlyClosed(withinMs) {
    const now = this.now();
    return this.all()
      .filter((r) => !isOpen(r) && this.closedAt.has(r.id) && now - this.closedAt.get(r.id) < withinMs)
      .sort((a, b) => this.closedAt.get(b.id) - this.closedAt.get(a.id));
  }

  _put(reservation) {
    const previous = this.reservations.get(reservation.id);
    this.reservations.set(reservation.id, reservation);
    if (!isOpen(reservation) && (!previous || isOpen(previous)) && !this.closedAt.has(reservation.id)) {
      this.closedAt.set(reservation.id, this.now());
    }
  }

  _refetch(id) {
    if (!this.fetchOne) return;
    this.fetchOne(id).then(
      (reservation) => this.upsert(reservation),
      () => {
        /* not reachable now; the next snapshot tries again */
      },
    );
  }
}
