// The stored tokens of the signed-in user (localStorage["weer.auth"], written by /login/'s
// signed_in page): {access, refresh, role, hpid, user_id, next}.
//
// auth.access        the current access token (or null)
// auth.refresh()     POST /api/auth/refresh with the refresh token and store the new pair.
//                    Single-flight: concurrent callers share one request. Across tabs a Web
//                    Lock serialises refreshes, and a tab that finds the stored refresh token
//                    already changed adopts it instead of presenting its own (refresh tokens
//                    work once; presenting a used one revokes the whole login). On 401/403
//                    the login is over: storage is cleared and the promise rejects SignedOut.
//                    Network failures reject with the fetch error and keep the tokens.
// auth.user          {role, hpid, user_id} or null
import { SignedOut } from "./protocol.js";

export const STORAGE_KEY = "weer.auth";
const REFRESH_URL = "/api/auth/refresh";
const LOCK_NAME = "weer.auth.refresh";

function readStored(storage) {
  try {
    const value = JSON.parse(storage.getItem(STORAGE_KEY) ?? "null");
    return value && typeof value.access === "string" ? value : null;
  } catch {
    return null;
  }
}

export class Auth {
  constructor({ storage = globalThis.localStorage, fetchImpl = (...a) => globalThis.fetch(...a), locks = globalThis.navigator?.locks } = {}) {
    this.storage = storage;
    this.fetchImpl = fetchImpl;
    this.locks = locks;
    this._state = readStored(storage);
    this._inflight = null;
  }

  get access() {
    return this._state?.access ?? null;
  }

  get user() {
    if (!this._state) return null;
    const { role, hpid = null, user_id } = this._state;
    return { role, hpid, user_id };
  }

  get signedIn() {
    return this._state !== null;
  }

  refresh() {
    if (!this._inflight) {
      const run = () => this._refresh();
      const work = this.locks ? this.locks.request(LOCK_NAME, run) : run();
      this._inflight = work.finally(() => {
        this._inflight = null;
      });
    }
    return this._inflight;
  }

  async _refresh() {
    const stored = readStored(this.storage);
    if (!stored) {
      this._state = null;
      throw new SignedOut("no stored login");
    }
    if (this._state && stored.refresh !== this._state.refresh) {
      // Another tab refreshed while we waited: its pair is the current one.
      this._state = stored;
      return stored.access;
    }
    const response = await this.fetchImpl(REFRESH_URL, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ refresh: stored.refresh }),
    });
    if (response.status === 401 || response.status === 403) {
      this.signOut();
      let code = "signed_out";
      try {
        code = (await response.json()).error?.code ?? code;
      } catch {
        /* keep the generic code */
      }
      throw new SignedOut(code);
    }
    if (!response.ok) throw new Error(`token refresh failed: HTTP ${response.status}`);
    const pair = await response.json();
    this._state = { ...stored, access: pair.access, refresh: pair.refresh };
    this.storage.setItem(STORAGE_KEY, JSON.stringify(this._state));
    return pair.access;
  }

  signOut() {
    this._state = null;
    this.storage.removeItem(STORAGE_KEY);
  }

  /** Adopt a pair another tab stored (the `storage` event). */
  reload() {
    this._state = readStored(this.storage);
  }
}

export const auth = new Auth();

/** The login page that comes back to this one afterwards. */
export function loginUrl(next = globalThis.location.pathname) {
  return `/login/?next=${encodeURIComponent(next)}`;
}

/**
 * Leave for the login page unless the stored user has `role` (and, for hospital staff, an
 * hpid). Returns the user, or null after starting the navigation.
 */
export function requireRole(role) {
  const user = auth.user;
  if (!user || user.role !== role || (role === "hospital" && !user.hpid)) {
    globalThis.location.assign(loginUrl());
    return null;
  }
  return user;
}

if (globalThis.addEventListener) {
  globalThis.addEventListener("storage", (event) => {
    if (event.key === STORAGE_KEY) auth.reload();
  });
}
