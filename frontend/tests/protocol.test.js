// @ts-check
/** Unit tests of frontend/src/protocol.js against a scripted socket, a hand-moved clock and a seeded random. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { deflateSync } from "node:zlib";

import { LiveConnection, QUIET_RECOVERY_MS, SignedOut, Status } from "../src/protocol.js";
import { FakeClock, deferred, fakeWebSocketClass, seededRandom, settle } from "./fakes.js";

const SEED = 11;
const BACKOFF = { initialMs: 500, maxMs: 30_000, factor: 2 };

/** A connection wired to fakes, with what it reports recorded. */
function setup(options = {}) {
  const clock = new FakeClock();
  const WebSocketImpl = fakeWebSocketClass();
  const tokens = {
    access: "token-1",
    refreshes: 0,
    /** @type {() => Promise<string>} */
    async refresh() {
      tokens.refreshes += 1;
      tokens.access = `token-${tokens.refreshes + 1}`;
      return tokens.access;
    },
  };
  const conn = new LiveConnection({
    url: "ws://weer.test/ws/",
    tokens,
    WebSocketImpl: /** @type {any} */ (WebSocketImpl),
    clock,
    random: seededRandom(SEED),
    backoff: BACKOFF,
    ...options,
  });
  /** @type {string[]} */
  const statuses = [];
  conn.addEventListener("status", (e) => statuses.push(/** @type {CustomEvent} */ (e).detail.status));
  /** @type {any[]} */
  const serverErrors = [];
  conn.addEventListener("servererror", (e) => serverErrors.push(/** @type {CustomEvent} */ (e).detail));
  return { conn, clock, tokens, statuses, serverErrors, sockets: WebSocketImpl.sockets, socket: () => WebSocketImpl.last };
}

/** A subscriber that records what it is given: ["snapshot", data, {seq, reason}], ["event", seq], ["error", code]. */
function recorder() {
  /** @type {any[]} */
  const calls = [];
  return {
    calls,
    events: () => calls.filter((c) => c[0] === "event").map((c) => c[1]),
    /** @param {any} data @param {{ seq: number, reason: string }} info */
    onSnapshot: (data, info) => calls.push(["snapshot", data, info]),
    /** @param {any} event */
    onEvent: (event) => calls.push(["event", event.seq]),
    /** @param {any} error */
    onError: (error) => calls.push(["error", error.code]),
  };
}

const STREAM = "beds.11";
/** @param {number} seq */
const event = (seq, stream = STREAM) => ({ type: "beds.changed", stream, seq, ts: 0, data: { hpid: "A1100015", changes: {} } });
/** @param {number} seq */
const subscribed = (seq, stream = STREAM) => ({ type: "subscribed", stream, seq });
/** @param {number} seq */
const snapshot = (seq, reason = "initial", stream = STREAM) => ({ type: "snapshot", stream, seq, reason, data: { hospitals: [seq] } });

/** Started, open, subscribed to STREAM, which has had its snapshot at seq 100. */
function live(options = {}) {
  const env = setup(options);
  const sub = recorder();
  const unsubscribe = env.conn.subscribe(STREAM, sub);
  env.conn.start();
  env.socket().open();
  env.socket().receive(subscribed(100), snapshot(100));
  return { ...env, sub, unsubscribe };
}

/**
 * Run the next timer due (e.g. the pending reconnect), however far off it is.
 * @param {FakeClock} clock
 */
function fireNext(clock) {
  const delay = clock.nextDelay();
  assert.notEqual(delay, null, "a timer is pending");
  clock.advance(/** @type {number} */ (delay));
}

/**
 * Expected full-jitter delays, from a twin of the connection's seeded random.
 * @param {number} count
 */
function expectedDelays(count, seed = SEED) {
  const random = seededRandom(seed);
  return Array.from({ length: count }, (_, attempt) => random() * Math.min(BACKOFF.maxMs, BACKOFF.initialMs * BACKOFF.factor ** attempt));
}

/**
 * A binary frame of the server's for `message` on a socket that asked `snapshots=deflate`.
 * @param {object} message
 */
function deflated(message) {
  const zlib = deflateSync(Buffer.from(JSON.stringify(message)));
  return zlib.buffer.slice(zlib.byteOffset, zlib.byteOffset + zlib.byteLength);
}

/**
 * Wait, in real time, until `done()`: binary frames are inflated asynchronously (off the FakeClock).
 * @param {() => boolean} done
 */
async function until(done, timeoutMs = 2_000) {
  const start = Date.now();
  while (!done()) {
    assert.ok(Date.now() - start < timeoutMs, "timed out");
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/**
 * Install a fake window for online/offline events (globalThis has no addEventListener in Node).
 * @param {import("node:test").TestContext} t
 */
function fakeWindow(t) {
  const win = new EventTarget();
  Object.assign(globalThis, { addEventListener: win.addEventListener.bind(win), removeEventListener: win.removeEventListener.bind(win) });
  t.after(() => {
    delete (/** @type {any} */ (globalThis).addEventListener);
    delete (/** @type {any} */ (globalThis).removeEventListener);
  });
  return win;
}

// -- connecting -----------------------------------------------------------------------------

test("start connects to the URL with the access token and goes live when the socket opens", () => {
  const { conn, socket, statuses } = setup();
  assert.equal(conn.status, Status.STOPPED);
  conn.start();
  assert.equal(socket().url.href, "ws://weer.test/ws/?token=token-1&snapshots=deflate");
  assert.equal(socket().binaryType, "arraybuffer");
  assert.equal(conn.status, Status.CONNECTING);
  socket().open();
  assert.equal(conn.status, Status.LIVE);
  assert.deepEqual(statuses, [Status.CONNECTING, Status.LIVE]);
});

test("without DecompressionStream the URL does not ask for deflated snapshots", (t) => {
  const saved = globalThis.DecompressionStream;
  delete (/** @type {any} */ (globalThis).DecompressionStream);
  t.after(() => {
    globalThis.DecompressionStream = saved;
  });
  const { conn, socket } = setup();
  conn.start();
  assert.equal(socket().url.href, "ws://weer.test/ws/?token=token-1");
});

test("on open every stream is subscribed in one message, without since before any snapshot", () => {
  const { conn, socket } = setup();
  conn.subscribe("beds.11", recorder());
  conn.subscribe("crew.42", recorder());
  conn.start();
  socket().open();
  assert.deepEqual(socket().sent, [{ type: "subscribe", streams: ["beds.11", "crew.42"] }]);
});

test("subscribe while connected sends a subscribe at once", () => {
  const { conn, socket } = live();
  conn.subscribe("crew.42", recorder());
  assert.deepEqual(socket().sent.at(-1), { type: "subscribe", streams: ["crew.42"] });
});

test("subscribing to one stream twice throws", () => {
  const { conn } = live();
  assert.throws(() => conn.subscribe(STREAM, recorder()), /already subscribed/);
});

// -- snapshots and events -------------------------------------------------------------------

test("a snapshot then live events reach the subscriber in order and set lastSeq", () => {
  const { conn, socket, sub } = live();
  socket().receive(event(101), event(102));
  assert.deepEqual(sub.calls, [
    ["snapshot", { hospitals: [100] }, { seq: 100, reason: "initial" }],
    ["event", 101],
    ["event", 102],
  ]);
  assert.deepEqual(conn.lastSeq, { [STREAM]: 102 });
});

test("frames arrive as text, several back to back, and are applied in order", () => {
  const { socket, sub } = live();
  const frames = [event(101), event(102), event(103)].map((m) => JSON.stringify(m));
  socket().receive(...frames);
  assert.deepEqual(sub.events(), [101, 102, 103]);
});

test("duplicate seqs are ignored", () => {
  const { conn, socket, sub } = live();
  socket().receive(event(101), event(101), event(100), event(102), event(101));
  assert.deepEqual(sub.events(), [101, 102]);
  assert.deepEqual(conn.lastSeq, { [STREAM]: 102 });
});

test("events before the stream's first snapshot are ignored", () => {
  const { conn, socket } = setup();
  const sub = recorder();
  conn.subscribe(STREAM, sub);
  conn.start();
  socket().open();
  socket().receive(subscribed(100), event(101), snapshot(101), event(102));
  assert.deepEqual(sub.calls.map((c) => c[0] === "event" ? c[1] : c[0]), ["snapshot", 102]);
});

test("a seq gap drops the stream's state, resubscribes without since, and the app gets a fresh snapshot", () => {
  const { conn, socket, sub } = live();
  socket().receive(event(101), event(103));
  assert.deepEqual(socket().sent.slice(-2), [
    { type: "unsubscribe", streams: [STREAM] },
    { type: "subscribe", streams: [STREAM] },
  ]);
  assert.deepEqual(conn.lastSeq, {});
  socket().receive(event(104), { type: "unsubscribed", stream: STREAM }, subscribed(110), snapshot(110), event(111));
  assert.deepEqual(sub.calls.slice(-3), [
    ["event", 101],
    ["snapshot", { hospitals: [110] }, { seq: 110, reason: "initial" }],
    ["event", 111],
  ]);
  assert.deepEqual(conn.lastSeq, { [STREAM]: 111 });
});

test("messages for a stream that is not subscribed are ignored", () => {
  const { conn, socket, sub } = live();
  socket().receive(snapshot(5, "initial", "beds.26"), event(6, "beds.26"));
  assert.equal(sub.calls.length, 1);
  assert.deepEqual(conn.lastSeq, { [STREAM]: 100 });
});

test("unsubscribe sends unsubscribe and later messages for that stream are ignored", () => {
  const { conn, socket, sub, unsubscribe } = live();
  unsubscribe();
  assert.deepEqual(socket().sent.at(-1), { type: "unsubscribe", streams: [STREAM] });
  socket().receive(event(101), { type: "unsubscribed", stream: STREAM }, snapshot(200));
  assert.equal(sub.calls.length, 1);
  assert.deepEqual(conn.lastSeq, {});
  unsubscribe();
  assert.equal(socket().sentOf("unsubscribe").length, 1, "a second call does nothing");
});

// -- compressed snapshots ------------------------------------------------------------------

test("a deflated binary snapshot gives the subscriber exactly what the same snapshot as text does", async () => {
  const hospitals = Array.from({ length: 2_000 }, (_, i) => ({ hpid: `A${i}`, name: "서울대학교병원 응급실", beds: { er_general: i } }));
  const message = { type: "snapshot", stream: STREAM, seq: 100, reason: "initial", data: { hospitals } };
  const runs = [];
  for (const send of [(/** @type {any} */ s) => s.receive(message), (/** @type {any} */ s) => s.receiveBinary(deflated(message))]) {
    const { conn, socket } = setup();
    const sub = recorder();
    conn.subscribe(STREAM, sub);
    conn.start();
    socket().open();
    socket().receive(subscribed(100));
    send(socket());
    await until(() => sub.calls.length > 0);
    socket().receive(event(101));
    runs.push({ calls: sub.calls, lastSeq: conn.lastSeq, subscribes: socket().sentOf("subscribe").length });
  }
  assert.deepEqual(runs[1], runs[0]);
  assert.deepEqual(runs[1].calls[0], ["snapshot", { hospitals }, { seq: 100, reason: "initial" }]);
  assert.deepEqual(runs[1].lastSeq, { [STREAM]: 101 });
});

test("text events in the same read as a binary snapshot wait for it, then apply with no gap", async () => {
  const { conn, socket } = setup();
  const sub = recorder();
  conn.subscribe(STREAM, sub);
  conn.start();
  socket().open();
  socket().receive(subscribed(100));
  socket().receiveBinary(deflated(snapshot(100)));
  socket().receive(event(101), event(102));
  assert.deepEqual(sub.calls, [], "nothing is applied before the snapshot");
  await until(() => sub.calls.length === 3);
  assert.deepEqual(sub.calls, [
    ["snapshot", { hospitals: [100] }, { seq: 100, reason: "initial" }],
    ["event", 101],
    ["event", 102],
  ]);
  assert.deepEqual(socket().sentOf("subscribe").length, 1, "no resubscribe: no gap was seen");
  socket().receive(event(103));
  assert.deepEqual(sub.events(), [101, 102, 103], "once the queue is empty, text is handled at once");
});

test("a binary resync snapshot mid-stream is applied before the events that follow it", async () => {
  const { conn, socket, sub } = live();
  socket().receive(event(101));
  socket().receiveBinary(deflated(snapshot(5_000, "resync")));
  socket().receive(event(5_001), event(5_002));
  await until(() => sub.calls.length === 5);
  assert.deepEqual(sub.calls.slice(2), [
    ["snapshot", { hospitals: [5_000] }, { seq: 5_000, reason: "resync" }],
    ["event", 5_001],
    ["event", 5_002],
  ]);
  assert.deepEqual(socket().sentOf("unsubscribe"), []);
  assert.deepEqual(conn.lastSeq, { [STREAM]: 5_002 });
});

test("binary snapshots of two streams and text between them are handled in arrival order", async () => {
  const { conn, socket, sub } = live();
  const crew = recorder();
  conn.subscribe("crew.42", crew);
  /** @type {string[]} */
  const order = [];
  const note = (/** @type {any} */ r, /** @type {string} */ name) => {
    const { onSnapshot, onEvent } = r;
    r.onSnapshot = (/** @type {any} */ d, /** @type {any} */ i) => (order.push(`${name} snapshot ${i.seq}`), onSnapshot(d, i));
    r.onEvent = (/** @type {any} */ e) => (order.push(`${name} event ${e.seq}`), onEvent(e));
  };
  note(sub, "beds");
  note(crew, "crew");
  socket().receive(subscribed(7, "crew.42"));
  socket().receiveBinary(deflated(snapshot(7, "initial", "crew.42")));
  socket().receive(event(101));
  socket().receiveBinary(deflated(snapshot(300, "resync")));
  socket().receive(event(8, "crew.42"), event(301));
  await until(() => order.length === 5);
  assert.deepEqual(order, ["crew snapshot 7", "beds event 101", "beds snapshot 300", "crew event 8", "beds event 301"]);
});

test("a binary snapshot still inflating when its socket is replaced is never applied", async () => {
  const { conn, clock, socket } = setup();
  const sub = recorder();
  conn.subscribe(STREAM, sub);
  conn.start();
  socket().open();
  socket().receive(subscribed(100));
  socket().receiveBinary(deflated(snapshot(100)));
  socket().receive(event(101));
  socket().serverClose(1006);
  fireNext(clock);
  socket().open();
  assert.deepEqual(socket().sent, [{ type: "subscribe", streams: [STREAM] }], "no since: no snapshot was applied");
  socket().receive(subscribed(200));
  socket().receiveBinary(deflated(snapshot(200)));
  await until(() => sub.calls.length > 0);
  await new Promise((resolve) => setTimeout(resolve, 20)); // time for the old one to finish too
  assert.deepEqual(sub.calls, [["snapshot", { hospitals: [200] }, { seq: 200, reason: "initial" }]]);
  assert.deepEqual(conn.lastSeq, { [STREAM]: 200 });
});

for (const [name, payload] of [
  ["not zlib", new Uint8Array([1, 2, 3, 4]).buffer],
  ["truncated zlib", deflated(snapshot(100)).slice(0, -4)],
  ["zlib of non-JSON", (() => { const z = deflateSync("not json"); return z.buffer.slice(z.byteOffset, z.byteOffset + z.byteLength); })()],
]) {
  test(`a binary frame that does not inflate to JSON (${name}) replaces the socket, which then asks for text snapshots`, async () => {
    const { conn, clock, socket, sockets, sub } = live();
    clock.advance(5);
    const old = socket();
    old.receiveBinary(/** @type {ArrayBuffer} */ (payload));
    old.receive(event(101));
    await until(() => conn.status === Status.RECONNECTING);
    assert.equal(conn.lastMessageAt, 5);
    assert.equal(old.closedByClient, 1000);
    assert.deepEqual(sub.events(), [], "frames after the bad one are dropped with its socket");
    fireNext(clock);
    assert.equal(sockets.length, 2);
    assert.equal(socket().url.href, "ws://weer.test/ws/?token=token-1");
    socket().open();
    assert.deepEqual(socket().sent, [{ type: "subscribe", streams: [STREAM], since: { [STREAM]: 100 } }]);
    socket().receive(subscribed(101), event(101));
    assert.deepEqual(sub.events(), [101]);
  });
}

// -- resuming -------------------------------------------------------------------------------

test("after a drop it resubscribes with since and applies the replayed events once", () => {
  const { conn, clock, socket, sockets, sub } = live();
  socket().receive(event(101), event(102));
  socket().serverClose(1006);
  fireNext(clock);
  assert.equal(sockets.length, 2);
  socket().open();
  assert.deepEqual(socket().sent, [{ type: "subscribe", streams: [STREAM], since: { [STREAM]: 102 } }]);
  socket().receive(subscribed(104), event(102), event(103), event(104), event(104), event(105));
  assert.deepEqual(sub.events(), [101, 102, 103, 104, 105]);
  assert.deepEqual(conn.lastSeq, { [STREAM]: 105 });
});

test("a snapshot on resume (history expired) replaces the stream's state", () => {
  const { conn, clock, socket, sub } = live();
  socket().serverClose(1001);
  fireNext(clock);
  socket().open();
  socket().receive(subscribed(500), snapshot(500, "history_expired"), event(501));
  assert.deepEqual(sub.calls.slice(-2), [
    ["snapshot", { hospitals: [500] }, { seq: 500, reason: "history_expired" }],
    ["event", 501],
  ]);
});

test("a replay that skips a seq is a gap: resubscribe without since", () => {
  const { clock, socket, sub } = live();
  socket().serverClose(1006);
  fireNext(clock);
  socket().open();
  socket().receive(subscribed(103), event(101), event(103));
  assert.deepEqual(socket().sent.slice(-2), [
    { type: "unsubscribe", streams: [STREAM] },
    { type: "subscribe", streams: [STREAM] },
  ]);
  assert.deepEqual(sub.events(), [101]);
});

// -- server errors --------------------------------------------------------------------------

test("a server error about a stream goes to its onError; every error to the servererror event", () => {
  const { socket, sub, serverErrors } = live();
  const forbidden = { type: "error", code: "forbidden", message: "You may not receive this stream.", stream: STREAM };
  const badJson = { type: "error", code: "bad_json", message: "The message is not valid JSON." };
  const other = { type: "error", code: "not_subscribed", message: "Not subscribed.", stream: "crew.42" };
  socket().receive(forbidden, badJson, other);
  assert.deepEqual(sub.calls.slice(1), [["error", "forbidden"]]);
  assert.deepEqual(serverErrors, [forbidden, badJson, other]);
});

test("unavailable retries that stream's subscribe, with since, after a growing backoff", () => {
  const { clock, socket } = live();
  const unavailable = { type: "error", code: "unavailable", message: "try again", stream: STREAM };
  const [first, second, third] = expectedDelays(3);
  socket().receive(unavailable);
  assert.equal(clock.nextDelay(), first);
  clock.advance(first);
  assert.deepEqual(socket().sent.at(-1), { type: "subscribe", streams: [STREAM], since: { [STREAM]: 100 } });
  socket().receive(unavailable);
  assert.equal(clock.nextDelay(), second);
  clock.advance(second);
  assert.equal(socket().sentOf("subscribe").length, 3);
  socket().receive(subscribed(100), unavailable); // `subscribed` alone is no join that worked
  assert.equal(clock.nextDelay(), third);
});

test("rate_limited on a stream retries its subscribe after a growing backoff, as unavailable", () => {
  const { clock, socket } = live();
  const limited = { type: "error", code: "rate_limited", message: "Too many subscriptions; try again in 20 s.", stream: STREAM };
  const [first, second] = expectedDelays(2);
  socket().receive(limited);
  assert.equal(clock.nextDelay(), first);
  clock.advance(first);
  assert.deepEqual(socket().sent.at(-1), { type: "subscribe", streams: [STREAM], since: { [STREAM]: 100 } });
  socket().receive(limited);
  assert.equal(clock.nextDelay(), second);
});

test("a connect refused as rate_limited (error, then 4429) reconnects with a growing backoff", () => {
  const { clock, socket, sockets } = live();
  socket().serverClose(1006);
  const [first, second] = expectedDelays(2);
  assert.equal(clock.nextDelay(), first);
  clock.advance(first);
  socket().open();
  socket().receive({ type: "error", code: "rate_limited", message: "Too many connections; try again in 30 s." });
  socket().serverClose(4429);
  assert.equal(clock.nextDelay(), second); // a socket that only said rate_limited never worked
  clock.advance(second);
  assert.equal(sockets.length, 3);
});

test("a snapshot or an event after an unavailable starts that stream's backoff over", () => {
  const unavailable = { type: "error", code: "unavailable", message: "try again", stream: STREAM };
  for (const served of [
    { type: "snapshot", stream: STREAM, seq: 200, reason: "history_expired", data: {} },
    { type: "beds.changed", stream: STREAM, seq: 101, data: {} },
  ]) {
    const { clock, socket } = live();
    const random = seededRandom(SEED);
    socket().receive(unavailable);
    assert.equal(clock.nextDelay(), random() * BACKOFF.initialMs);
    fireNext(clock);
    socket().receive(subscribed(100), served, unavailable);
    assert.equal(clock.nextDelay(), random() * BACKOFF.initialMs, served.type); // attempt 0 again
  }
});

test("a drop during an unavailable wait cancels the retry: the reconnect subscribes anyway", () => {
  const { clock, socket } = live();
  socket().receive({ type: "error", code: "unavailable", message: "try again", stream: STREAM });
  socket().serverClose(1006);
  fireNext(clock);
  socket().open();
  clock.advance(BACKOFF.initialMs); // past the first retry's bound
  assert.equal(socket().sentOf("subscribe").length, 1);
});

test("unsubscribe during an unavailable wait cancels the retry", () => {
  const { clock, socket, unsubscribe } = live();
  socket().receive({ type: "error", code: "unavailable", message: "try again", stream: STREAM });
  unsubscribe();
  clock.advance(BACKOFF.initialMs); // past the first retry's bound
  assert.equal(socket().sentOf("subscribe").length, 1);
});

// -- close codes ----------------------------------------------------------------------------

test("4401 refreshes the token, then reconnects at once with the new one and no status change", async () => {
  const { clock, socket, sockets, tokens, statuses } = live();
  socket().receive({ type: "error", code: "token_expired", message: "The access token expired." });
  socket().serverClose(4401);
  await settle();
  assert.equal(tokens.refreshes, 1);
  assert.equal(sockets.length, 2);
  assert.equal(socket().url.searchParams.get("token"), "token-2");
  socket().open();
  clock.advance(QUIET_RECOVERY_MS * 2);
  assert.deepEqual(statuses, [Status.CONNECTING, Status.LIVE]);
  assert.deepEqual(socket().sent, [{ type: "subscribe", streams: [STREAM], since: { [STREAM]: 100 } }]);
});

test("a 4401 recovery that takes long shows reconnecting, then live", async () => {
  const env = live();
  const refresh = deferred();
  env.tokens.refresh = () => refresh.promise;
  env.socket().serverClose(4401);
  env.clock.advance(QUIET_RECOVERY_MS - 1);
  assert.equal(env.conn.status, Status.LIVE);
  env.clock.advance(1);
  assert.equal(env.conn.status, Status.RECONNECTING);
  env.tokens.access = "token-2";
  refresh.resolve("token-2");
  await settle();
  env.socket().open();
  assert.deepEqual(env.statuses, [Status.CONNECTING, Status.LIVE, Status.RECONNECTING, Status.LIVE]);
});

test("a 4401 right after a reconnect that never worked waits for the backoff (no tight loop)", async () => {
  const { clock, socket, sockets, tokens } = live();
  socket().serverClose(4401);
  await settle();
  assert.equal(sockets.length, 2, "the first 4401 reconnects at once");
  socket().open();
  socket().receive({ type: "error", code: "invalid_token", message: "The token is invalid." });
  socket().serverClose(4401);
  await settle();
  assert.equal(tokens.refreshes, 2);
  assert.equal(sockets.length, 2, "the second waits");
  assert.equal(clock.nextDelay(), seededRandom(SEED)() * BACKOFF.initialMs * BACKOFF.factor, "attempt 1's bound");
  fireNext(clock);
  assert.equal(sockets.length, 3);
});

test("a refresh rejected with SignedOut stops the connection with reason signed_out", async () => {
  const { conn, clock, socket, sockets, tokens } = live();
  tokens.refresh = async () => {
    throw new SignedOut("the refresh token was refused");
  };
  socket().serverClose(4401);
  await settle();
  assert.equal(conn.status, Status.STOPPED);
  assert.equal(conn.stoppedReason, "signed_out");
  clock.advance(3_600_000);
  assert.equal(sockets.length, 1);
});

test("a refresh that fails for another reason (no network) reconnects after a backoff", async () => {
  const { conn, clock, socket, sockets, tokens } = live();
  tokens.refresh = async () => {
    throw new TypeError("Failed to fetch");
  };
  socket().serverClose(4401);
  await settle();
  assert.equal(conn.status, Status.RECONNECTING);
  assert.equal(sockets.length, 1);
  fireNext(clock);
  assert.equal(sockets.length, 2);
});

test("4403 stops with the code of the server's last error and never reconnects", () => {
  const { conn, clock, socket, sockets, statuses } = live();
  socket().receive({ type: "error", code: "account_disabled", message: "This account is disabled." });
  socket().serverClose(4403);
  assert.equal(conn.status, Status.STOPPED);
  assert.equal(conn.stoppedReason, "account_disabled");
  clock.advance(24 * 3_600_000);
  assert.equal(sockets.length, 1);
  assert.equal(clock.nextDelay(), null, "no timer left");
  assert.deepEqual(statuses.at(-1), Status.STOPPED);
});

test("4403 with no connection-level error before it stops with reason forbidden", () => {
  const { conn, socket } = live();
  socket().receive({ type: "error", code: "unknown_stream", message: "No stream.", stream: "beds.99" });
  socket().serverClose(4403);
  assert.equal(conn.stoppedReason, "forbidden");
});

for (const code of [1000, 1001, 1006, 1012, 4408, 4429]) {
  test(`close ${code} reconnects after a delay within the jittered backoff and resumes`, () => {
    const { conn, clock, socket, sockets } = live();
    socket().serverClose(code);
    assert.equal(conn.status, Status.RECONNECTING);
    const [delay] = expectedDelays(1);
    assert.ok(delay <= BACKOFF.initialMs);
    assert.equal(clock.nextDelay(), delay);
    clock.advance(delay);
    assert.equal(sockets.length, 2);
    socket().open();
    assert.equal(conn.status, Status.LIVE);
    assert.deepEqual(socket().sent[0].since, { [STREAM]: 100 });
  });
}

test("1012 (a server draining): a crowd closed together comes back spread over the first bound, each resuming with since", () => {
  const crowd = Array.from({ length: 50 }, (_, i) => live({ random: seededRandom(SEED + i) }));
  for (const { socket } of crowd) {
    socket().receive(event(101));
    socket().serverClose(1012);
  }
  const delays = crowd.map(({ clock }) => /** @type {number} */ (clock.nextDelay()));
  assert.ok(delays.every((d) => d >= 0 && d < BACKOFF.initialMs), "within the first bound");
  assert.equal(new Set(delays).size, delays.length, "no two alike");
  const sorted = [...delays].sort((a, b) => a - b);
  assert.ok(sorted[0] < 0.1 * BACKOFF.initialMs && sorted.at(-1) > 0.9 * BACKOFF.initialMs, "spread over it");
  for (const { conn, clock, socket, sockets, sub } of crowd) {
    clock.advance(/** @type {number} */ (clock.nextDelay()));
    assert.equal(sockets.length, 2);
    socket().open();
    assert.deepEqual(socket().sent, [{ type: "subscribe", streams: [STREAM], since: { [STREAM]: 101 } }]);
    socket().receive(subscribed(103), event(102), event(103));
    assert.deepEqual(sub.events(), [101, 102, 103]);
    assert.equal(sub.calls.filter((c) => c[0] === "snapshot").length, 1, "the initial one only");
    assert.equal(conn.status, Status.LIVE);
  }
});

test("each reconnect delay is random() times its attempt's bound (full jitter)", () => {
  const { clock, socket, sockets } = live();
  socket().serverClose(1006);
  for (const [attempt, delay] of expectedDelays(10).entries()) {
    assert.equal(clock.nextDelay(), delay, `attempt ${attempt}`);
    assert.ok(delay <= Math.min(BACKOFF.maxMs, BACKOFF.initialMs * BACKOFF.factor ** attempt));
    clock.advance(delay);
    assert.equal(sockets.length, attempt + 2);
    socket().serverClose(1006); // the handshake fails
  }
});

test("the backoff bound doubles per failed attempt, up to maxMs", () => {
  const { clock, socket } = live({ random: () => 0.999 });
  const delays = [];
  socket().serverClose(1006);
  for (let attempt = 0; attempt < 9; attempt += 1) {
    delays.push(clock.nextDelay());
    fireNext(clock);
    socket().serverClose(1006);
  }
  assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000].map((bound) => bound * 0.999));
});

test("the backoff starts over after a connection that worked", () => {
  const { clock, socket } = live({ random: () => 1 });
  socket().serverClose(1006);
  clock.advance(500);
  socket().serverClose(1006);
  assert.equal(clock.nextDelay(), 1000);
  clock.advance(1000);
  socket().open();
  socket().serverClose(1006); // opened, but the server said nothing: it did not work
  assert.equal(clock.nextDelay(), 2000);
  clock.advance(2000);
  socket().open();
  socket().receive(subscribed(100));
  socket().serverClose(1012);
  assert.equal(clock.nextDelay(), 500);
});

// -- liveness -------------------------------------------------------------------------------

test("after pingIntervalMs without a frame it pings; any frame restarts the count", () => {
  const { conn, clock, socket } = live({ pingIntervalMs: 20_000, pingTimeoutMs: 10_000 });
  clock.advance(19_999);
  socket().receive(event(101));
  assert.equal(conn.lastMessageAt, 19_999);
  clock.advance(19_999);
  assert.equal(socket().sentOf("ping").length, 0);
  clock.advance(1);
  assert.equal(socket().sentOf("ping").length, 1);
  clock.advance(9_999);
  socket().receive({ type: "pong" });
  clock.advance(19_999);
  assert.equal(conn.status, Status.LIVE);
  assert.equal(socket().sentOf("ping").length, 1);
});

test("no frame within pingTimeoutMs of a ping: the socket is closed and replaced", () => {
  const { conn, clock, socket, sockets } = live({ pingIntervalMs: 20_000, pingTimeoutMs: 10_000 });
  clock.advance(20_000 + 9_999);
  assert.equal(conn.status, Status.LIVE);
  clock.advance(1);
  assert.equal(conn.status, Status.RECONNECTING);
  assert.equal(sockets[0].closedByClient, 1000);
  fireNext(clock);
  assert.equal(sockets.length, 2);
});

test("a handshake that does not open within pingTimeoutMs is given up and retried", () => {
  const { conn, clock, sockets } = setup({ pingTimeoutMs: 10_000 });
  conn.start();
  clock.advance(10_000);
  assert.equal(sockets[0].closedByClient, 1000);
  assert.equal(conn.status, Status.RECONNECTING);
  fireNext(clock);
  assert.equal(sockets.length, 2);
});

test("a socket that cannot even be created counts as a failed handshake", () => {
  const { conn, clock } = setup({
    WebSocketImpl: /** @type {any} */ (class {
      constructor() {
        throw new DOMException("blocked", "SecurityError");
      }
    }),
  });
  conn.start();
  assert.equal(conn.status, Status.RECONNECTING);
  assert.equal(clock.nextDelay(), expectedDelays(1)[0]);
});

test("frames from a socket that was replaced are ignored", () => {
  const { clock, socket, sockets, sub } = live();
  const old = socket();
  old.serverClose(1006);
  fireNext(clock);
  socket().open();
  old.receive(event(101));
  old.serverClose(1006);
  assert.deepEqual(sub.events(), []);
  assert.equal(sockets.length, 2);
});

test("non-JSON text frames are ignored, but count as signs of life", () => {
  const { conn, clock, socket, sub } = live();
  clock.advance(5);
  socket().receive("not json", "null", "[1]");
  assert.equal(conn.lastMessageAt, 5);
  assert.equal(sub.calls.length, 1);
  assert.equal(conn.status, Status.LIVE);
});

// -- the network and stopping ---------------------------------------------------------------

test("offline closes the socket and waits; online reconnects at once and resumes", (t) => {
  const win = fakeWindow(t);
  const { conn, clock, sockets, socket } = live();
  win.dispatchEvent(new Event("offline"));
  assert.equal(conn.status, Status.OFFLINE);
  assert.equal(sockets[0].closedByClient, 1000);
  clock.advance(3_600_000);
  assert.equal(sockets.length, 1);
  win.dispatchEvent(new Event("online"));
  assert.equal(sockets.length, 2);
  assert.equal(conn.status, Status.RECONNECTING);
  socket().open();
  assert.equal(conn.status, Status.LIVE);
  assert.deepEqual(socket().sent[0].since, { [STREAM]: 100 });
});

test("online during a backoff wait reconnects at once; while connected it changes nothing", (t) => {
  const win = fakeWindow(t);
  const { sockets, socket } = live();
  win.dispatchEvent(new Event("online"));
  assert.equal(sockets.length, 1);
  socket().serverClose(1006);
  win.dispatchEvent(new Event("online"));
  assert.equal(sockets.length, 2);
});

test("a start while navigator.onLine is false waits for online", (t) => {
  const win = fakeWindow(t);
  Object.defineProperty(globalThis, "navigator", { value: { onLine: false }, configurable: true });
  t.after(() => delete (/** @type {any} */ (globalThis).navigator));
  const { conn, sockets } = setup();
  conn.start();
  assert.equal(conn.status, Status.OFFLINE);
  assert.equal(sockets.length, 0);
  win.dispatchEvent(new Event("online"));
  assert.equal(sockets.length, 1);
});

test("stop() closes the socket, sets the reason and prevents any reconnect", (t) => {
  const win = fakeWindow(t);
  const { conn, clock, sockets } = live();
  conn.stop("logged_out");
  assert.equal(conn.status, Status.STOPPED);
  assert.equal(conn.stoppedReason, "logged_out");
  assert.equal(sockets[0].closedByClient, 1000);
  win.dispatchEvent(new Event("online"));
  clock.advance(3_600_000);
  assert.equal(sockets.length, 1);
});

test("stop() during a backoff wait cancels the reconnect", () => {
  const { conn, clock, socket, sockets } = live();
  socket().serverClose(1006);
  conn.stop();
  assert.equal(conn.stoppedReason, null);
  clock.advance(3_600_000);
  assert.equal(sockets.length, 1);
});

test("stop() during a token refresh prevents the reconnect", async () => {
  const { conn, socket, sockets, tokens } = live();
  const refresh = deferred();
  tokens.refresh = () => refresh.promise;
  socket().serverClose(4401);
  conn.stop();
  refresh.resolve("token-2");
  await settle();
  assert.equal(sockets.length, 1);
  assert.equal(conn.status, Status.STOPPED);
});

test("start() after stop() resumes the subscriptions with since", () => {
  const { conn, socket, sockets } = live();
  conn.stop("signed_out");
  conn.start();
  assert.equal(conn.stoppedReason, null);
  assert.equal(sockets.length, 2);
  socket().open();
  assert.deepEqual(socket().sent, [{ type: "subscribe", streams: [STREAM], since: { [STREAM]: 100 } }]);
});

test("status events fire in order through a whole session", (t) => {
  const win = fakeWindow(t);
  const { conn, clock, socket, statuses } = live();
  socket().serverClose(1006);
  fireNext(clock);
  socket().open();
  win.dispatchEvent(new Event("offline"));
  win.dispatchEvent(new Event("online"));
  socket().open();
  conn.stop();
  assert.deepEqual(statuses, ["connecting", "live", "reconnecting", "live", "offline", "reconnecting", "live", "stopped"]);
});
