// @ts-check
/** Test doubles for protocol.test.js: a clock moved by hand, a scriptable WebSocket, a seeded random. */

/** setTimeout/clearTimeout/now on a time that only moves when a test calls `advance`. */
export class FakeClock {
  #now = 0;
  #nextId = 1;
  /** @type {Map<number, { at: number, fn: () => void }>} */
  #timers = new Map();

  now() {
    return this.#now;
  }

  /** @param {() => void} fn @param {number} [ms] */
  setTimeout(fn, ms = 0) {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.#now + ms, fn });
    return id;
  }

  /** @param {number|null|undefined} id */
  clearTimeout(id) {
    if (id != null) this.#timers.delete(id);
  }

  /**
   * Move time on by `ms`, running every timer that falls due, in order (those they set too).
   * @param {number} ms
   */
  advance(ms) {
    const end = this.#now + ms;
    for (;;) {
      const due = [...this.#timers].filter(([, t]) => t.at <= end).sort(([a, x], [b, y]) => x.at - y.at || a - b);
      if (due.length === 0) break;
      const [id, timer] = due[0];
      this.#timers.delete(id);
      this.#now = timer.at;
      timer.fn();
    }
    this.#now = end;
  }

  /** @returns {number|null} ms until the next timer is due */
  nextDelay() {
    const ats = [...this.#timers.values()].map((t) => t.at);
    return ats.length === 0 ? null : Math.min(...ats) - this.#now;
  }
}

/**
 * A WebSocket class whose instances the test drives as the server: `open()`, `receive(...)`,
 * `receiveBinary(...)`, `serverClose(code)`. Each class keeps its own `sockets`; `sent` holds what the client sent,
 * parsed. Like a browser, `close()` on an open socket fires `onclose` (here at once).
 */
export function fakeWebSocketClass() {
  /** @type {FakeWebSocket[]} */
  const sockets = [];
  class FakeWebSocket {
    static sockets = sockets;
    static get last() {
      return sockets[sockets.length - 1];
    }
    readyState = 0;
    binaryType = "blob"; // a browser's default
    /** @type {any[]} */
    sent = [];
    /** @type {number|null} */
    closedByClient = null;
    /** @type {((event: any) => void)|null} */ onopen = null;
    /** @type {((event: any) => void)|null} */ onmessage = null;
    /** @type {((event: any) => void)|null} */ onclose = null;

    /** @param {string} url */
    constructor(url) {
      this.url = new URL(url);
      sockets.push(this);
    }

    /** @param {string} text */
    send(text) {
      if (this.readyState !== 1) throw new Error("InvalidStateError: send on a socket that is not open");
      this.sent.push(JSON.parse(text));
    }

    /** @param {number} [code] */
    close(code = 1005) {
      if (this.readyState >= 2) return;
      this.readyState = 3;
      this.closedByClient = code;
      this.onclose?.({ code });
    }

    // -- the server's side --
    open() {
      this.readyState = 1;
      this.onopen?.({});
    }

    /** @param {...(object|string)} messages each one text frame (objects are JSON-encoded) */
    receive(...messages) {
      for (const m of messages) this.onmessage?.({ data: typeof m === "string" ? m : JSON.stringify(m) });
    }

    /** @param {...ArrayBuffer} payloads each one binary frame, delivered as `binaryType` "arraybuffer" does */
    receiveBinary(...payloads) {
      for (const data of payloads) this.onmessage?.({ data });
    }

    /** @param {number} code */
    serverClose(code) {
      this.readyState = 3;
      this.onclose?.({ code });
    }

    /** @param {string} type @returns {any[]} the client's messages of that type */
    sentOf(type) {
      return this.sent.filter((m) => m.type === type);
    }
  }
  return FakeWebSocket;
}

/**
 * A seeded PRNG (mulberry32) in [0, 1): two made with one seed give the same numbers.
 * @param {number} seed
 */
export function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A promise with its resolve/reject outside, for a refresh the test finishes when it likes. */
export function deferred() {
  /** @type {(value: any) => void} */ let resolve = () => {};
  /** @type {(error: any) => void} */ let reject = () => {};
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Let pending promise callbacks run (a macrotask turn; no time passes on the FakeClock). */
export const settle = () => new Promise((resolve) => setImmediate(resolve));
