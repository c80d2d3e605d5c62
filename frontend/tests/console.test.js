// Unit tests of the console's pure modules: the metrics history and what the page shows of it.
import { test } from "node:test";
import assert from "node:assert/strict";

const SRC = process.env.WEER_SRC ?? new URL("../src", import.meta.url).pathname;
const { MetricsHistory } = await import(`${SRC}/metrics-history.js`);
const { chartsOf, presenceRows, regionRows, formatDuration } = await import(`${SRC}/console-figures.js`);

const point = (at, extra = {}) => ({
  at,
  connections: { total: 3, by_role: { ambulance: 2, admin: 1 } },
  processes: { "web:1": { connections: 2, rss_bytes: 104857600 }, "web:2": { connections: 1, rss_bytes: null } },
  frames_sent_per_s: 10,
  events_published_per_s: 2,
  slow_consumer_closes: 0,
  abuse_closes: 0,
  resumes: 0,
  snapshots: 0,
  resyncs: 0,
  ...extra,
});

test("the history keeps points in order, once each, over its window only", () => {
  const history = new MetricsHistory({ windowMs: 10_000 });
  let changes = 0;
  history.addEventListener("change", () => (changes += 1));
  assert.equal(history.add(point(1_000)), true);
  assert.equal(history.add(point(1_000)), false); // a replayed duplicate
  assert.equal(history.add(point(500)), false); // older
  assert.equal(history.add({}), false); // the stream's empty snapshot before the first report
  history.add(point(2_000));
  history.add(point(11_500));
  assert.deepEqual(history.points.map((p) => p.at), [2_000, 11_500]);
  assert.equal(changes, 3);
  assert.deepEqual(history.xs(), [2, 11.5]);
});

test("increases are per second, and null across a restart of the counters", () => {
  const history = new MetricsHistory();
  history.add(point(1_000, { snapshots: 10 }));
  history.add(point(3_000, { snapshots: 30 }));
  history.add(point(4_000, { snapshots: 5 })); // processes restarted: counters start over
  history.add(point(5_000, { snapshots: 8 }));
  assert.deepEqual(history.increase((p) => p.snapshots), [null, 10, null, 3]);
  assert.equal(history.grownInWindow((p) => p.snapshots), 20 + 5 + 3);
});

test("the charts carry every figure with its latest value", () => {
  const history = new MetricsHistory();
  history.add(point(1_000));
  history.add(point(2_000, { connections: { total: 53, by_role: { ambulance: 52, admin: 1 } }, slow_consumer_closes: 2 }));
  const charts = Object.fromEntries(chartsOf(history).map((chart) => [chart.key, chart]));
  assert.deepEqual(Object.keys(charts), ["connections", "processes", "frames", "events", "closes", "catch_up", "memory"]);
  const lines = Object.fromEntries(charts.connections.lines.map((line) => [line.key, line]));
  assert.deepEqual(lines.total.values, [3, 53]);
  assert.equal(lines.ambulance.latest, 52);
  assert.equal(lines.hospital.latest, 0);
  assert.deepEqual(charts.processes.lines.map((line) => line.key), ["web:1", "web:2"]);
  assert.deepEqual(charts.memory.lines.map((line) => line.latest), [100, null]);
  const slow = charts.closes.lines.find((line) => line.key === "slow_consumer_closes");
  assert.deepEqual([slow.latest, slow.total], [2, 2]);
});

test("presence rows put alarms first and say how long a hospital has had no screen", () => {
  const now = 1_000_000;
  const rows = presenceRows(
    {
      hospitals: [
        { hpid: "A2", name: "나병원", region_code: "11", screens: 2, last_screen_at: now, pending: 0, last_request_at: null, alarm: false },
        { hpid: "A3", name: "다병원", region_code: "11", screens: 0, last_screen_at: now - 90_000, pending: 1, last_request_at: now - 5_000, alarm: true },
        { hpid: "A1", name: "가병원", region_code: "11", screens: 0, last_screen_at: null, pending: 0, last_request_at: now - 60_000, alarm: true },
      ],
    },
    now,
  );
  assert.deepEqual(rows.map((r) => [r.hpid, r.alarm, r.noScreenSeconds]), [["A1", true, null], ["A3", true, 90], ["A2", false, null]]);
  assert.deepEqual(presenceRows(undefined, now), []);
});

test("region rows turn times into ages", () => {
  const now = 100_000;
  const [row] = regionRows({ regions: [{ region_code: "11", name: "서울특별시", hospitals: 55, last_success_at: 95_000, newest_data_at: 40_000, oldest_data_at: null, stale: true, stale_since: 1, consecutive_failures: 3, polls_failed: 7, last_error: "timeout" }] }, now);
  assert.deepEqual([row.lastSuccessAge, row.newestAge, row.oldestAge, row.stale, row.pollsFailed], [5, 60, null, true, 7]);
  assert.equal(formatDuration(125), "2분 5초");
  assert.equal(formatDuration(null), "—");
});

test("a section the newest report lacks is taken from the last report that had it", () => {
  const history = new MetricsHistory();
  history.add(point(1_000, { presence: { alarms: 1, hospitals: [] } }));
  history.add(point(2_000, { presence: null }));
  assert.deepEqual(history.latestSection("presence"), [{ alarms: 1, hospitals: [] }, 1_000]);
  assert.deepEqual(history.latestSection("ingestion_regions"), [null, null]);
});
