// STAND-IN, branch wip-pages only: a minimal LiveConnection with the API of
// /work/frontend-plan.md, written so the pages can run before the protocol helper's module
// lands. The coordinator replaces this file with the real one (which has the tests).

export const Status = {
  CONNECTING: "connecting",
  LIVE: "live",
  RECONNECTING: "reconnecting",
  OFFLINE: "offline",
  STOPPED: "stopped",
};

export class SignedOut extends Error {
  constructor(message = "signed out") {
    super(message);
    this.name = "SignedOut";
  }
}

export class LiveConnection extends EventTarget {
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
    Object.assign(this, { url, tokens, WebSocketImpl, clock, random, backoff });
    this.pingIntervalMs = pingIntervalMs;
    this.pingTimeoutMs = pingTimeoutMs;
    this._streams = new Map(); // name -> {handlers:Set, seq:number|null}
    this._status = Status.STOPPED;
    this._lastMessageAt = null;
    this._stoppedReason = null;
    this._attempt = 0;
    this._socket = null;
    this._timer = null;
    this._pingTimer = null;
    this._serverError = null;
    if (globalThis.addEventListener) {
      globalThis.addEventListener("offline", () => this._goOffline());
      globalThis.addEventListener("online", () => this._reconnectNow());
    }
  }

  get status() {
    return this._status;
  }
  get lastSeq() {
    const out = {};
    for (const [name, s] of this._streams) if (s.seq !== null) out[name] = s.seq;
    return out;
  }
  get lastMessageAt() {
    return this._lastMessageAt;
  }
  get stoppedReason() {
    return this._stoppedReason;
  }

  start() {
    this._stoppedReason = null;
    this._setStatus(Status.CONNECTING);
    this._connect();
  }

  stop(reason = null) {
    this._stoppedReason = reason;
    this._clearTimers();
    const socket = this._socket;
    this._socket = null;
    if (socket) socket.close(1000);
    this._setStatus(Status.STOPPED);
  }

  subscribe(stream, handlers) {
    let entry = this._streams.get(stream);
    if (!entry) {
      entry = { handlers: new Set(), seq: null };
      this._streams.set(stream, entry);
      this._send({ type: "subscribe", streams: [stream] });
    }
    entry.handlers.add(handlers);
    return () => {
      entry.handlers.delete(handlers);
      if (entry.handlers.size === 0) {
        this._streams.delete(stream);
        this._send({ type: "unsubscribe", streams: [stream] });
      }
    };
  }

  _setStatus(status) {
    if (this._status === status) return;
    this._status = status;
    this.dispatchEvent(new CustomEvent("status", { detail: { status } }));
  }

  _send(message) {
    if (this._socket && this._socket.readyState === 1) this._socket.send(JSON.stringify(message));
  }

  _connect() {
    const access = this.tokens.access;
    let socket;
    try {
      socket = new this.WebSocketImpl(`${this.url}?token=${encodeURIComponent(access ?? "")}`);
    } catch {
      this._scheduleReconnect();
      return;
    }
    this._socket = socket;
    this._serverError = null;
    socket.onopen = () => {
      if (socket !== this._socket) return;
      const names = [...this._streams.keys()];
      if (names.length) {
        const since = {};
        for (const name of names) {
          const seq = this._streams.get(name).seq;
          if (seq !== null) since[name] = seq;
        }
        const message = { type: "subscribe", streams: names };
        if (Object.keys(since).length) message.since = since;
        socket.send(JSON.stringify(message));
      }
      this._armPing();
    };
    socket.onmessage = (message) => {
      if (socket !== this._socket) return;
      this._lastMessageAt = this.clock.now();
      this._armPing();
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      this._handle(frame);
    };
    socket.onclose = (event) => {
      if (socket !== this._socket) return;
      this._socket = null;
      this._clearTimers();
      this._closed(event.code);
    };
  }

  _handle(frame) {
    if (frame.type === "subscribed") {
      this._attempt = 0;
      this._setStatus(Status.LIVE);
      return;
    }
    if (frame.type === "error") {
      if (!frame.stream) this._serverError = frame.code;
      this.dispatchEvent(new CustomEvent("servererror", { detail: frame }));
      const entry = frame.stream && this._streams.get(frame.stream);
      if (entry) for (const h of entry.handlers) h.onError?.(frame);
      return;
    }
    if (frame.type === "pong" || frame.type === "unsubscribed") return;
    const entry = this._streams.get(frame.stream);
    if (!entry) return;
    if (frame.type === "snapshot") {
      entry.seq = frame.seq;
      this._setStatus(Status.LIVE);
      for (const h of entry.handlers) h.onSnapshot?.(frame.data, { seq: frame.seq, reason: frame.reason });
      return;
    }
    if (typeof frame.seq !== "number") return;
    if (entry.seq !== null && frame.seq <= entry.seq) return;
    if (entry.seq !== null && frame.seq !== entry.seq + 1) {
      entry.seq = null;
      this._send({ type: "unsubscribe", streams: [frame.stream] });
      this._send({ type: "subscribe", streams: [frame.stream] });
      return;
    }
    entry.seq = frame.seq;
    this._setStatus(Status.LIVE);
    for (const h of entry.handlers) h.onEvent?.(frame);
  }

  _closed(code) {
    if (this._status === Status.STOPPED) return;
    if (code === 4401) {
      Promise.resolve()
        .then(() => this.tokens.refresh())
        .then(
          () => this._connect(),
          (error) => {
            if (error instanceof SignedOut || error?.name === "SignedOut") this.stop("signed_out");
            else this._scheduleReconnect();
          },
        );
      return;
    }
    if (code === 4403) {
      this.stop(this._serverError ?? "forbidden");
      return;
    }
    this._scheduleReconnect();
  }

  _scheduleReconnect() {
    if (this._status === Status.STOPPED) return;
    if (this._status !== Status.OFFLINE) this._setStatus(Status.RECONNECTING);
    const { initialMs, maxMs, factor } = this.backoff;
    const delay = this.random() * Math.min(maxMs, initialMs * factor ** this._attempt);
    this._attempt += 1;
    this._timer = this.clock.setTimeout(() => this._connect(), delay);
  }

  _armPing() {
    if (this._pingTimer) this.clock.clearTimeout(this._pingTimer);
    this._pingTimer = this.clock.setTimeout(() => {
      this._send({ type: "ping" });
      this._pingTimer = this.clock.setTimeout(() => this._socket?.close(4000), this.pingTimeoutMs);
    }, this.pingIntervalMs);
  }

  _clearTimers() {
    if (this._timer) this.clock.clearTimeout(this._timer);
    if (this._pingTimer) this.clock.clearTimeout(this._pingTimer);
    this._timer = this._pingTimer = null;
  }

  _goOffline() {
    if (this._status === Status.STOPPED) return;
    this._setStatus(Status.OFFLINE);
  }

  _reconnectNow() {
    if (this._status === Status.STOPPED || this._status === Status.LIVE) return;
    this._clearTimers();
    this._attempt = 0;
    const socket = this._socket;
    this._socket = null;
    socket?.close(1000);
    this._setStatus(Status.RECONNECTING);
    this._connect();
  }
}
