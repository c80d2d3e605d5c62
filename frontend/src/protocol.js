// @ts-check
/**
 * The client side of WeER's websocket protocol (docs/protocol.md): one `LiveConnection` per page.
 *
 * Contract. The connection keeps one socket to `/ws/?token=<access>` open for as long as it is
 * started, and keeps every subscribed stream in step with the server:
 * - where the platform has `DecompressionStream` it asks for compressed snapshots
 *   (`&snapshots=deflate`): each `snapshot` then comes as a binary frame, a zlib stream of the
 *   same JSON, and is inflated and handled exactly as the text one would be. Frames are handled
 *   strictly in arrival order: while a binary frame is being inflated, every later frame (text
 *   or binary) waits for it. Frames a socket still had waiting when it is replaced are dropped,
 *   as all frames of a replaced socket are (the resume with `since` covers them);
 * - on every open it subscribes all streams in one message, with `since` = the stream's last
 *   applied `seq` for those that have one, so a drop costs nothing the history still holds;
 * - a `snapshot` replaces the stream's state (`onSnapshot`) and sets its `seq`; an event is
 *   applied (`onEvent`) only if its `seq` is the last one + 1; older or equal seqs are
 *   duplicates and ignored; a higher one is a gap: the stream's state is dropped (no `seq`,
 *   events ignored) and it is unsubscribed and subscribed again without `since`, so the next
 *   thing its subscriber sees is a fresh snapshot;
 * - the subscriber of a stream gets the server's `error` messages about it (`onError`); every
 *   `error` is also dispatched as a "servererror" event; `unavailable` (and `rate_limited`:
 *   too many subscriptions) retries the stream's subscribe after a backoff that grows until
 *   the stream is served again (a snapshot or an event: `subscribed` alone may still be
 *   followed by `unavailable`).
 * `status` says where it is (`Status`; STOPPED with no reason until `start()`), with a "status"
 * event on every change; `lastSeq`, `lastMessageAt` and `stoppedReason` are there for
 * indicators and tests.
 *
 * Failure modes, by close code (anything the socket does not close by itself counts as 1006):
 * - 4401 (token missing, invalid or expired): `tokens.refresh()`, then reconnect at once; the
 *   status stays as it was unless that takes longer than QUIET_RECOVERY_MS. A refresh rejected
 *   with `SignedOut` stops the connection with reason "signed_out" (the page must log in again);
 *   a refresh that fails otherwise (no network) is retried, through the next 4401, with backoff.
 *   A 4401 right after a reconnect that never worked also waits for the backoff (no tight loop).
 * - 4403 (account pending, rejected or disabled): stop, with the code of the server's last
 *   connection-level `error` as the reason (e.g. "account_disabled"; "forbidden" if none came).
 *   It never reconnects by itself; `start()` again after a new login.
 * - anything else (1000, 1001, 1006, 1012, 4408, 4429, …): RECONNECTING, then a reconnect after
 *   a full-jitter backoff, `random() * min(maxMs, initialMs * factor ** attempt)`, where
 *   `attempt` counts the reconnects since the last connection that worked (one on which the
 *   server sent anything but an `error`). 1012 (service restart) is a server process draining:
 *   it closes its sockets one by one over its drain window, so the first attempt's jitter,
 *   [0, initialMs), is all the spreading a crowd needs; the resume with `since` replays what
 *   the socket missed.
 * - a binary frame that does not inflate to JSON: the socket is closed and replaced as after a
 *   1006 (the frames after it are dropped), and later sockets ask for text snapshots. Losing a
 *   snapshot is not harmless as a lost event is (the next event shows a gap): a stream that had
 *   none would ignore its events forever. (A text frame that is not JSON is ignored: the server
 *   never sends one and there is nothing in it to act on.)
 * - silence: after `pingIntervalMs` without any frame it sends `{"type":"ping"}`; if nothing at
 *   all arrives within `pingTimeoutMs` more, the socket is taken for dead, closed and replaced.
 *   A handshake that has not opened within `pingTimeoutMs` is given up the same way.
 * - the browser's `offline` event closes the socket and waits (OFFLINE); `online` reconnects at
 *   once. A start while `navigator.onLine` is false waits for `online` too.
 * Subscriptions outlive sockets and `stop()`: a later `start()` resumes them with `since`.
 * A stream the server refuses (`forbidden`, `unknown_stream`, …) stays subscribed here and is
 * asked for again on every reconnect; its subscriber decides, in `onError`, to unsubscribe.
 */

export const Status = Object.freeze({
  CONNECTING: "connecting",
  LIVE: "live",
  RECONNECTING: "reconnecting",
  OFFLINE: "offline",
  STOPPED: "stopped",
});

/** `tokens.refresh()` rejects with this when the refresh token is no good: log in again. */
export class SignedOut extends Error {
  name = "SignedOut";
}

/** How long a 4401 recovery (refresh + reconnect) may take before the status shows it. */
export const QUIET_RECOVERY_MS = 2_000;

const OPEN = 1; // WebSocket.OPEN

/** What `inflateFrame` gives for a binary frame that is not a zlib stream of JSON text. */
const UNDECODABLE = Symbol("undecodable");

/**
 * @typedef {{ setTimeout(fn: () => void, ms: number): any, clearTimeout(id: any): void, now(): number }} Clock
 * @typedef {{ readonly access: string|null, refresh(): Promise<string> }} Tokens
 * @typedef {{ type: string, stream?: string, seq?: number, [field: string]: any }} Message
 * @typedef {{
 *   onSnapshot(data: any, info: { seq: number, reason: string }): void,
 *   onEvent(event: Message): void,
 *   onError?(error: Message): void,
 * }} Subscriber
 * @typedef {{ subscriber: Subscriber, lastSeq: number|undefined, retries: number, retryTimer: any }} StreamState
 * @typedef {"reconnect"|"silence"|"quiet"} TimerName
 * @typedef {string | Promise<unknown>} QueuedFrame a text frame, or a binary one being inflated
 */

export class LiveConnection extends EventTarget {
  #url;
  #tokens;
  #WebSocket;
  #clock;
  #random;
  #backoff;
  #pingIntervalMs;
  #pingTimeoutMs;

  /** @type {Map<string, StreamState>} */
  #streams = new Map();
  /** @type {string} */
  #status = Status.STOPPED;
  /** @type {string|null} */
  #stoppedReason = null;
  /** @type {number|null} */
  #lastMessageAt = null;
  /** @type {WebSocket|null} the current socket; events of any other are ignored */
  #socket = null;
  /** @type {string|null} code of the current socket's last connection-level error */
  #lastErrorCode = null;
  /** @type {QueuedFrame[]} the current socket's frames that wait for a binary one before them */
  #inbox = [];
  /** ask for deflated snapshots (if the platform can inflate them); false after one failed to */
  #askDeflate = true;
  #attempt = 0; // reconnects since the last connection that worked
  #epoch = 0; // bumped to forget a token refresh still in flight
  /** @type {Record<TimerName, any>} */
  #timers = { reconnect: null, silence: null, quiet: null };

  /**
   * @param {object} options
   * @param {string} options.url absolute ws(s):// URL of /ws/, without the token
   * @param {Tokens} options.tokens `refresh()` stores the new pair, so `access` is the new one
   * @param {typeof WebSocket} [options.WebSocketImpl]
   * @param {Clock} [options.clock]
   * @param {() => number} [options.random] in [0, 1), for the backoff's jitter
   * @param {{ initialMs: number, maxMs: number, factor: number }} [options.backoff]
   * @param {number} [options.pingIntervalMs] silence after which we ping
   * @param {number} [options.pingTimeoutMs] silence after a ping at which the socket is dead
   */
  constructor({
    url,
    tokens,
    WebSocketImpl = globalThis.WebSocket,
    clock = {
      setTimeout: globalThis.setTimeout.bind(globalThis),
      clearTimeout: globalThis.clearTimeout.bind(globalThis),
      now: () => Date.now(),
    },
    random = Math.random,
    backoff = { initialMs: 500, maxMs: 30_000, factor: 2 },
    pingIntervalMs = 20_000,
    pingTimeoutMs = 10_000,
  }) {
    super();
    this.#url = url;
    this.#tokens = tokens;
    this.#WebSocket = WebSocketImpl;
    this.#clock = clock;
    this.#random = random;
    this.#backoff = backoff;
    this.#pingIntervalMs = pingIntervalMs;
    this.#pingTimeoutMs = pingTimeoutMs;
  }

  get status() {
    return this.#status;
  }

  /** @returns {Record<string, number>} per stream, the seq of the last applied event or snapshot */
  get lastSeq() {
    /** @type {Record<string, number>} */
    const seqs = {};
    for (const [stream, state] of this.#streams) {
      if (state.lastSeq !== undefined) seqs[stream] = state.lastSeq;
    }
    return seqs;
  }

  get lastMessageAt() {
    return this.#lastMessageAt;
  }

  get stoppedReason() {
    return this.#stoppedReason;
  }

  /** Connect (and keep reconnecting). Does nothing unless stopped. */
  start() {
    if (this.#status !== Status.STOPPED) return;
    this.#stoppedReason = null;
    this.#attempt = 0;
    globalThis.addEventListener?.("online", this.#onOnline);
    globalThis.addEventListener?.("offline", this.#onOffline);
    if (globalThis.navigator?.onLine === false) {
      this.#setStatus(Status.OFFLINE);
      return;
    }
    this.#setStatus(Status.CONNECTING);
    this.#connect();
  }

  /**
   * Close the socket and never reconnect (until `start()`).
   * @param {string} [reason] becomes `stoppedReason`
   */
  stop(reason) {
    if (this.#status === Status.STOPPED) return;
    globalThis.removeEventListener?.("online", this.#onOnline);
    globalThis.removeEventListener?.("offline", this.#onOffline);
    this.#halt();
    this.#stoppedReason = reason ?? null;
    this.#setStatus(Status.STOPPED);
  }

  /**
   * Receive `stream`: a snapshot first (again after any gap or expired history), then its
   * events in order, each once. One subscriber per stream.
   * @param {string} stream
   * @param {Subscriber} subscriber
   * @returns {() => void} unsubscribe
   */
  subscribe(stream, subscriber) {
    if (this.#streams.has(stream)) throw new Error(`already subscribed to ${stream}`);
    /** @type {StreamState} */
    const state = { subscriber, lastSeq: undefined, retries: 0, retryTimer: null };
    this.#streams.set(stream, state);
    this.#sendSubscribe([stream]);
    return () => {
      if (this.#streams.get(stream) !== state) return;
      this.#clock.clearTimeout(state.retryTimer);
      this.#streams.delete(stream);
      this.#send({ type: "unsubscribe", streams: [stream] });
    };
  }

  // -- the socket ---------------------------------------------------------------------------

  #connect() {
    const url = new URL(this.#url);
    url.searchParams.set("token", this.#tokens.access ?? "");
    if (this.#askDeflate && typeof globalThis.DecompressionStream === "function") {
      url.searchParams.set("snapshots", "deflate");
    }
    this.#lastErrorCode = null;
    let socket;
    try {
      socket = new this.#WebSocket(url.href);
    } catch {
      this.#onClose(1006); // e.g. a blocked URL: treated like a failed handshake
      return;
    }
    this.#socket = socket;
    socket.binaryType = "arraybuffer";
    socket.onopen = () => socket === this.#socket && this.#onOpen();
    socket.onmessage = (event) => socket === this.#socket && this.#onFrame(socket, event.data);
    socket.onclose = (event) => socket === this.#socket && this.#onClose(event.code);
    this.#setTimer("silence", this.#pingTimeoutMs, () => this.#onClose(1006));
  }

  #onOpen() {
    this.#clearTimer("quiet");
    this.#setStatus(Status.LIVE);
    this.#armSilenceTimer();
    if (this.#streams.size > 0) this.#sendSubscribe([...this.#streams.keys()]);
  }

  /** @param {number} code */
  #onClose(code) {
    this.#dropSocket();
    if (code === 4403) {
      this.stop(this.#lastErrorCode ?? "forbidden");
    } else if (code === 4401) {
      void this.#refreshAndReconnect();
    } else {
      this.#setStatus(Status.RECONNECTING);
      this.#scheduleReconnect();
    }
  }

  async #refreshAndReconnect() {
    const epoch = this.#epoch;
    this.#setTimer("quiet", QUIET_RECOVERY_MS, () => this.#setStatus(Status.RECONNECTING));
    try {
      await this.#tokens.refresh();
    } catch (error) {
      if (epoch !== this.#epoch) return;
      if (error instanceof SignedOut) {
        this.stop("signed_out");
      } else {
        this.#setStatus(Status.RECONNECTING);
        this.#scheduleReconnect();
      }
      return;
    }
    if (epoch !== this.#epoch) return; // stopped, or the network came and went meanwhile
    if (this.#attempt === 0) {
      this.#attempt = 1;
      this.#connect();
    } else {
      this.#scheduleReconnect();
    }
  }

  #scheduleReconnect() {
    this.#setTimer("reconnect", this.#backoffDelay(this.#attempt++), () => this.#connect());
  }

  /** @param {number} attempt how many tries failed before this one */
  #backoffDelay(attempt) {
    const { initialMs, maxMs, factor } = this.#backoff;
    return this.#random() * Math.min(maxMs, initialMs * factor ** attempt); // full jitter
  }

  /** Forget the current socket (closing it if it is still open) and what belonged to it. */
  #dropSocket() {
    const socket = this.#socket;
    this.#socket = null;
    this.#inbox = []; // its queued frames are void; a drain still running for them sees the change
    this.#clearTimer("silence");
    for (const state of this.#streams.values()) this.#clock.clearTimeout(state.retryTimer);
    socket?.close(1000);
  }

  /** Drop the socket and every pending step: nothing happens until someone connects again. */
  #halt() {
    this.#epoch += 1;
    this.#clearTimer("reconnect");
    this.#clearTimer("quiet");
    this.#dropSocket();
  }

  #onOnline = () => {
    if (this.#status === Status.STOPPED || this.#socket) return;
    this.#halt();
    this.#attempt = 0;
    this.#setStatus(Status.RECONNECTING);
    this.#connect();
  };

  #onOffline = () => {
    if (this.#status === Status.STOPPED) return;
    this.#halt();
    this.#setStatus(Status.OFFLINE);
  };

  /** Any frame shows the socket is alive; after a silence ping, then give the socket up. */
  #armSilenceTimer() {
    this.#setTimer("silence", this.#pingIntervalMs, () => {
      this.#send({ type: "ping" });
      this.#setTimer("silence", this.#pingTimeoutMs, () => this.#onClose(1006));
    });
  }

  // -- messages -----------------------------------------------------------------------------

  /**
   * A frame of the current socket: handled now if nothing waits before it, else queued.
   * @param {WebSocket} socket
   * @param {unknown} data a string (text frame) or an ArrayBuffer (binary frame)
   */
  #onFrame(socket, data) {
    this.#lastMessageAt = this.#clock.now();
    this.#armSilenceTimer();
    if (typeof data === "string" && this.#inbox.length === 0) {
      this.#onMessage(parseJson(data)); // the common case: no binary frame to wait for
      return;
    }
    this.#inbox.push(typeof data === "string" ? data : inflateFrame(data));
    if (this.#inbox.length === 1) void this.#drainInbox(socket, this.#inbox);
  }

  /**
   * Handle `inbox`'s frames in order, each once the binary ones before it are inflated, until it
   * is empty or `socket` is no longer the current one. One drain runs per non-empty inbox.
   * @param {WebSocket} socket
   * @param {QueuedFrame[]} inbox
   */
  async #drainInbox(socket, inbox) {
    while (inbox.length > 0) {
      const frame = inbox[0];
      const value = typeof frame === "string" ? parseJson(frame) : await frame;
      if (socket !== this.#socket) return; // replaced meanwhile: its frames are ignored
      if (value === UNDECODABLE) {
        this.#askDeflate = false; // whatever mangles them, text snapshots avoid it
        this.#onClose(1006);
        return;
      }
      try {
        this.#onMessage(value);
      } catch (error) {
        // A subscriber threw: report it as a listener's error would be, and go on with the rest.
        queueMicrotask(() => {
          throw error;
        });
      }
      inbox.shift();
    }
  }

  /** @param {unknown} value a frame's JSON value (undefined if it was not JSON) */
  #onMessage(value) {
    const message = /** @type {Message} */ (value);
    if (typeof message?.type !== "string") return; // the server only sends messages: nothing to act on
    if (message.type !== "error") this.#attempt = 0; // the server serves us: this connection worked
    const state = message.stream === undefined ? undefined : this.#streams.get(message.stream);
    switch (message.type) {
      case "error":
        this.#onServerError(message, state);
        break;
      case "subscribed":
        break; // not yet a join that worked: `unavailable` may still follow it
      case "snapshot":
        if (state && typeof message.seq === "number") {
          state.retries = 0; // the stream is served again: its next `unavailable` backs off anew
          state.lastSeq = message.seq;
          state.subscriber.onSnapshot(message.data, { seq: message.seq, reason: message.reason });
        }
        break;
      case "pong":
      case "unsubscribed":
        break;
      default:
        if (state && typeof message.seq === "number") this.#onEvent(message, state);
    }
  }

  /**
   * @param {Message} event
   * @param {StreamState} state
   */
  #onEvent(event, state) {
    const seq = /** @type {number} */ (event.seq);
    if (state.lastSeq === undefined || seq <= state.lastSeq) return; // awaiting a snapshot, or a duplicate
    if (seq !== state.lastSeq + 1) {
      // A gap: what we hold can no longer be patched. Start the stream over from a snapshot.
      const stream = /** @type {string} */ (event.stream);
      state.lastSeq = undefined;
      this.#clock.clearTimeout(state.retryTimer);
      this.#send({ type: "unsubscribe", streams: [stream] });
      this.#sendSubscribe([stream]);
      return;
    }
    state.lastSeq = seq;
    state.retries = 0;
    state.subscriber.onEvent(event);
  }

  /**
   * @param {Message} error
   * @param {StreamState|undefined} state
   */
  #onServerError(error, state) {
    if (error.stream === undefined) this.#lastErrorCode = error.code;
    this.dispatchEvent(new CustomEvent("servererror", { detail: error }));
    if (!state) return;
    state.subscriber.onError?.(error);
    if (error.code === "unavailable" || error.code === "rate_limited") {
      const stream = /** @type {string} */ (error.stream);
      const delay = this.#backoffDelay(state.retries++);
      this.#clock.clearTimeout(state.retryTimer);
      state.retryTimer = this.#clock.setTimeout(() => this.#sendSubscribe([stream]), delay);
    }
  }

  /** @param {string[]} streams subscribed, each with `since` if it has a seq */
  #sendSubscribe(streams) {
    /** @type {Record<string, number>} */
    const since = {};
    for (const stream of streams) {
      const seq = this.#streams.get(stream)?.lastSeq;
      if (seq !== undefined) since[stream] = seq;
    }
    this.#send(
      Object.keys(since).length > 0
        ? { type: "subscribe", streams, since }
        : { type: "subscribe", streams },
    );
  }

  /** @param {object} message sent only on an open socket; otherwise the next open covers it */
  #send(message) {
    if (this.#socket?.readyState === OPEN) this.#socket.send(JSON.stringify(message));
  }

  // -- small helpers ------------------------------------------------------------------------

  /** @param {string} status */
  #setStatus(status) {
    if (status === this.#status) return;
    this.#status = status;
    this.dispatchEvent(new CustomEvent("status", { detail: { status } }));
  }

  /**
   * @param {TimerName} name
   * @param {number} ms
   * @param {() => void} fn
   */
  #setTimer(name, ms, fn) {
    this.#clearTimer(name);
    this.#timers[name] = this.#clock.setTimeout(() => {
      this.#timers[name] = null;
      fn();
    }, ms);
  }

  /** @param {TimerName} name */
  #clearTimer(name) {
    if (this.#timers[name] !== null) this.#clock.clearTimeout(this.#timers[name]);
    this.#timers[name] = null;
  }
}

/**
 * @param {string} text
 * @returns {unknown} its JSON value, or undefined if it is not JSON
 */
function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * The message of a binary frame: a zlib stream (RFC 1950) of the message's UTF-8 JSON text.
 * @param {unknown} data an ArrayBuffer (the socket's binaryType), or a Blob or typed array
 * @returns {Promise<unknown>} its JSON value, or UNDECODABLE (corrupt, not JSON, no
 *   DecompressionStream); never rejects
 */
async function inflateFrame(data) {
  try {
    const inflated = new Blob([/** @type {BlobPart} */ (data)])
      .stream()
      .pipeThrough(new DecompressionStream("deflate"));
    return JSON.parse(await new Response(inflated).text());
  } catch {
    return UNDECODABLE;
  }
}
