// @ts-check
// The console's memory of the `metrics` stream: one point per `metrics.snapshot` (once a
// second), the last `windowMs` of them, kept in the page. A reconnect resumes the stream (the
// protocol module asks with `since`), so the replayed points fill the gap; a snapshot after a
// longer outage adds one point and keeps the older ones. Points are keyed by their `at`
// (the server's time): a duplicate or an older point is ignored.
//
// Series for the charts: `xs()` in unix seconds (uPlot's x unit), `values(pick)` the figure
// `pick(point)` returns (null where a point lacks it), and `increase(pick)` the per-second
// increase of a cumulative count between consecutive points (null across a restart, when the
// count went down).

export const WINDOW_MS = 10 * 60 * 1000;

export class MetricsHistory extends EventTarget {
  /** @param {{ windowMs?: number }} [options] */
  constructor({ windowMs = WINDOW_MS } = {}) {
    super();
    this.windowMs = windowMs;
    /** @type {any[]} */
    this.points = [];
  }

  /** The newest point, or null. */
  get latest() {
    return this.points.at(-1) ?? null;
  }

  /** Add a `metrics.snapshot`'s data; returns whether it was new. */
  add(data) {
    if (!data || typeof data.at !== "number") return false;
    const last = this.latest;
    if (last && data.at <= last.at) return false;
    this.points.push(data);
    const oldest = data.at - this.windowMs;
    let drop = 0;
    while (drop < this.points.length && this.points[drop].at < oldest) drop += 1;
    if (drop) this.points.splice(0, drop);
    this.dispatchEvent(new Event("change"));
    return true;
  }

  xs() {
    return this.points.map((point) => point.at / 1000);
  }

  /** @param {(point: any) => number | null | undefined} pick */
  values(pick) {
    return this.points.map((point) => {
      const value = pick(point);
      return typeof value === "number" ? value : null;
    });
  }

  /** @param {(point: any) => number | null | undefined} pick */
  increase(pick) {
    return this.points.map((point, i) => {
      if (i === 0) return null;
      const before = pick(this.points[i - 1]);
      const now = pick(point);
      if (typeof before !== "number" || typeof now !== "number" || now < before) return null;
      const seconds = (point.at - this.points[i - 1].at) / 1000;
      return seconds > 0 ? Math.round(((now - before) / seconds) * 10) / 10 : null;
    });
  }

  /** How much a cumulative count grew over the whole window (restarts counted from 0). */
  grownInWindow(pick) {
    let total = 0;
    for (let i = 1; i < this.points.length; i += 1) {
      const before = pick(this.points[i - 1]);
      const now = pick(this.points[i]);
      if (typeof now !== "number") continue;
      total += typeof before === "number" && now >= before ? now - before : now;
    }
    return total;
  }

  /** The newest point whose section `name` could be read (a report carries null for a
   * section whose source was out of reach at that second): [section, its point's `at`]. */
  latestSection(name) {
    for (let i = this.points.length - 1; i >= 0; i -= 1) {
      const section = this.points[i][name];
      if (section) return [section, this.points[i].at];
    }
    return [null, null];
  }

  /** Every key `pick(point)` (an object) has in any point of the window, sorted. */
  keys(pick) {
    const seen = new Set();
    for (const point of this.points) for (const key of Object.keys(pick(point) ?? {})) seen.add(key);
    return [...seen].sort();
  }
}
