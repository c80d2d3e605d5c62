// Reservation requests on their way to the server, kept in localStorage until the server has
// answered them, so a request made in a tunnel is sent when the network returns and survives
// a reload. Each request gets its Idempotency-Key (a random UUID) when it is made, stored with
// it and sent on every attempt: however often it is retried, the server creates it once
// (docs/api.md, POST /api/reservations).
//
// It tries at once; a request that cannot reach the server (network error, 5xx) waits and is
// retried when the live connection comes back, when the browser says it is online, and every
// RETRY_MS meanwhile. One attempt at a time per page, and a Web Lock keeps two tabs from
// sending the same entry at once. A 4xx answer is final: the entry leaves the outbox and the
// error is reported ("failed"), e.g. a value the server refused.
//
// Events: "change"; "sent" (detail {entry, reservations}); "failed" (detail {entry, error});
// "signedout" (the login is over: the entry stays for the next one).
import { api, ApiError, NetworkError } from "./api.js";
import { SignedOut } from "./protocol.js";

export const OUTBOX_KEY = "weer.outbox";
const RETRY_MS = 15_000;
const LOCK_NAME = "weer.outbox";
// A request that could not go out for this long is about a patient who is no longer on the
// way: it is dropped (reported as "failed", code too_old) instead of reaching an ER late.
export const MAX_AGE_MS = 30 * 60_000;

export class TooOld extends Error {
  constructor() {
    super("too old");
    this.name = "TooOld";
    this.code = "too_old";
  }
}

export function randomUuid() {
  if (globalThis.crypto?.randomUUID) return globalThis.crypto.randomUUID();
  // crypto.randomUUID needs a secure context; getRandomValues does not (plain http on a LAN).
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export class Outbox extends EventTarget {
  constructor({ storage = globalThis.localStorage, send = defaultSend, locks = globalThis.navigator?.locks, userId = null } = {}) {
    super();
    this.storage = storage;
    this.send = send;
    this.locks = locks;
    this.key = userId === null ? OUTBOX_KEY : `${OUTBOX_KEY}.${userId}`;
    this._flushing = null;
    this._timer = null;
    this.lastError = null;
  }

  /** Entries not yet answered, oldest first: {key, body, created_at, attempts, last_error}. */
  entries() {
    try {
      const value = JSON.parse(this.storage.getItem(this.key) ?? "[]");
      return Array.isArray(value) ? value : [];
    } catch {
      return [];
    }
  }

  _write(entries) {
    this.storage.setItem(this.key, JSON.stringify(entries));
    this.dispatchEvent(new Event("change"));
  }

  _update(key, change) {
    this._write(this.entries().map((e) => (e.key === key ? { ...e, ...change } : e)));
  }

  _remove(key) {
    this._write(this.entries().filter((e) => e.key !== key));
  }

  /** Queue a POST /api/reservations body and try to send it now. Returns the entry. */
  add(body) {
    const entry = { key: randomUuid(), body, created_at: new Date().toISOString(), attempts: 0, last_error: null };
    this._write([...this.entries(), entry]);
    this.flush();
    return entry;
  }

  /** Give up a request that has not been sent (the crew changed their mind while offline). */
  discard(key) {
    this._remove(key);
  }

  /** Send every waiting entry, one after another. Concurrent calls share one run. */
  flush() {
    if (!this._flushing) {
      const run = () => this._flush();
      const work = this.locks ? this.locks.request(LOCK_NAME, run) : run();
      this._flushing = work
        .catch((error) => {
          if (error instanceof SignedOut) this.dispatchEvent(new CustomEvent("signedout", { detail: { error } }));
        })
        .finally(() => {
          this._flushing = null;
          this._schedule();
        });
    }
    return this._flushing;
  }

  async _flush() {
    for (const entry of this.entries()) {
      // Another tab may have sent it while we waited for the lock.
      if (!this.entries().some((e) => e.key === entry.key)) continue;
      if (Date.now() - Date.parse(entry.created_at) > MAX_AGE_MS) {
        this._remove(entry.key);
        this.dispatchEvent(new CustomEvent("failed", { detail: { entry, error: new TooOld() } }));
        continue;
      }
      this._update(entry.key, { attempts: entry.attempts + 1 });
      try {
        const reservations = await this.send(entry);
        this._remove(entry.key);
        this.lastError = null;
        this.dispatchEvent(new CustomEvent("sent", { detail: { entry, reservations } }));
      } catch (error) {
        if (error instanceof NetworkError || (error instanceof ApiError && (error.status >= 500 || error.status === 408 || error.status === 429)) || error instanceof SignedOut) {
          // Keep it: the same key goes out again later. (Signed out: it waits for the next login.)
          this.lastError = error;
          this._update(entry.key, { last_error: error.message });
          if (error instanceof SignedOut) throw error;
          return; // the network is down: the rest would fail the same way
        }
        this._remove(entry.key);
        this.dispatchEvent(new CustomEvent("failed", { detail: { entry, error } }));
      }
    }
  }

  _schedule() {
    if (this._timer) clearTimeout(this._timer);
    this._timer = null;
    if (this.entries().length) this._timer = setTimeout(() => this.flush(), RETRY_MS);
  }
}

function defaultSend(entry) {
  return api("/api/reservations", { method: "POST", body: entry.body, headers: { "Idempotency-Key": entry.key } });
}
