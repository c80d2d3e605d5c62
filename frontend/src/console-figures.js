// @ts-check
// What the console shows, computed from the `metrics` stream's points (MetricsHistory) and its
// latest `metrics.snapshot` (docs/protocol.md §5): the charts' lines, the presence rows and the
// ingestion rows. Pure functions of their inputs (the page's clock passed in), so they are
// tested without a browser.
import { t } from "./i18n.js";

const ROLES = ["ambulance", "hospital", "admin"];
const MB = 1024 * 1024;

/** The console's charts: [{key, heading, lines: [{key, label, values, latest, total?, unit?}]}]. */
export function chartsOf(history) {
  const perSecond = (key, pick) => {
    const values = history.increase(pick);
    return { key, label: t(`console.figure.${key}`), values, latest: values.at(-1) ?? null, total: history.grownInWindow(pick), unit: t("console.unit.per_s") };
  };
  const now = (key, label, pick, unit = undefined) => {
    const values = history.values(pick);
    return { key, label, values, latest: values.at(-1) ?? null, unit };
  };
  const processes = history.keys((p) => p.processes);
  return [
    {
      key: "connections",
      heading: t("console.chart.connections"),
      lines: [
        now("total", t("console.figure.total"), (p) => p.connections?.total),
        ...ROLES.map((role) => now(role, t(`console.role.${role}`), (p) => p.connections?.by_role?.[role] ?? 0)),
      ],
    },
    {
      key: "processes",
      heading: t("console.chart.processes"),
      lines: processes.map((name) => now(name, name, (p) => p.processes?.[name]?.connections)),
    },
    {
      key: "frames",
      heading: t("console.chart.frames"),
      lines: [now("frames_sent_per_s", t("console.figure.frames_sent_per_s"), (p) => p.frames_sent_per_s, t("console.unit.per_s"))],
    },
    {
      key: "events",
      heading: t("console.chart.events"),
      lines: [now("events_published_per_s", t("console.figure.events_published_per_s"), (p) => p.events_published_per_s, t("console.unit.per_s"))],
    },
    {
      key: "closes",
      heading: t("console.chart.closes"),
      lines: [perSecond("slow_consumer_closes", (p) => p.slow_consumer_closes), perSecond("abuse_closes", (p) => p.abuse_closes)],
    },
    {
      key: "catch_up",
      heading: t("console.chart.catch_up"),
      lines: [perSecond("resumes", (p) => p.resumes), perSecond("snapshots", (p) => p.snapshots), perSecond("resyncs", (p) => p.resyncs)],
    },
    {
      key: "memory",
      heading: t("console.chart.memory"),
      lines: processes.map((name) =>
        now(name, name, (p) => {
          const bytes = p.processes?.[name]?.rss_bytes;
          return typeof bytes === "number" ? Math.round((bytes / MB) * 10) / 10 : null;
        }, "MB"),
      ),
    },
  ];
}

/** Presence rows, alarms first: {hpid, name, screens, alarm, pending, lastRequestAt, noScreenSeconds}. */
export function presenceRows(presence, nowMs) {
  const rows = (presence?.hospitals ?? []).map((h) => ({
    hpid: h.hpid,
    name: h.name,
    regionCode: h.region_code,
    screens: h.screens,
    alarm: Boolean(h.alarm),
    pending: h.pending ?? 0,
    lastRequestAt: h.last_request_at ?? null,
    lastScreenAt: h.last_screen_at ?? null,
    noScreenSeconds: h.screens > 0 || h.last_screen_at == null ? null : Math.max(0, Math.round((nowMs - h.last_screen_at) / 1000)),
  }));
  return rows.sort((a, b) => Number(b.alarm) - Number(a.alarm) || String(a.name).localeCompare(String(b.name), "ko"));
}

/** Ingestion rows per region: ages in seconds (null when unknown) beside the raw figures. */
export function regionRows(section, nowMs) {
  const age = (ms) => (typeof ms === "number" ? Math.max(0, Math.round((nowMs - ms) / 1000)) : null);
  return (section?.regions ?? []).map((r) => ({
    regionCode: r.region_code,
    name: r.name,
    hospitals: r.hospitals,
    lastSuccessAge: age(r.last_success_at),
    newestAge: age(r.newest_data_at),
    oldestAge: age(r.oldest_data_at),
    stale: Boolean(r.stale),
    staleSince: r.stale_since ?? null,
    consecutiveFailures: r.consecutive_failures ?? 0,
    pollsFailed: r.polls_failed ?? 0,
    lastError: r.last_error ?? "",
  }));
}

/** "3초", "5분 20초", "2시간 5분": a duration for tables (the age wording of the tablets says "갱신"). */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 60) return t("console.duration.seconds", { s: seconds });
  if (seconds < 3600) return t("console.duration.minutes", { m: Math.floor(seconds / 60), s: seconds % 60 });
  if (seconds < 86_400) return t("console.duration.hours", { h: Math.floor(seconds / 3600), m: Math.floor((seconds % 3600) / 60) });
  return t("console.duration.days", { d: Math.floor(seconds / 86_400), h: Math.floor((seconds % 86_400) / 3600) });
}
