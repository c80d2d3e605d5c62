// Builds the pages into frontend/static/frontend/dist/ (served by Django through WhiteNoise).
//
//   node frontend/build.mjs            one build; prints each output's gzipped size and fails
//                                      when a page's JS is over the budget
//   node frontend/build.mjs --watch    rebuild the bundles on every change (no size check)
//
// Outputs: crew.js, er.js and console.js (one self-contained ES module per page: no shared
// chunks, so a page's weight is one file), sw.js (the service worker, a classic script: browsers register
// workers as classic scripts by default), app.css (our styles with Leaflet's CSS bundled in),
// console.css (the console's live page, with uPlot's CSS),
// korea.json (South Korea's outline as GeoJSON, from world-atlas, so the map needs no tiles).
import { createHash } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

import * as esbuild from "esbuild";
import { feature } from "topojson-client";

const PAGE_BUDGET_GZIP_BYTES = 150 * 1024;
const KOREA_FEATURE_ID = "410"; // ISO 3166-1 numeric: Republic of Korea
const KOREA_SOURCE = "world-atlas/countries-10m.json";
const KOREA_DECIMALS = 4; // ~10 m: finer than the 1:10m source itself

const here = path.dirname(fileURLToPath(import.meta.url));
const src = path.join(here, "src");
const dist = path.join(here, "static", "frontend", "dist");
const require = createRequire(import.meta.url);
const watch = process.argv.includes("--watch");

const common = {
  bundle: true,
  minify: true,
  sourcemap: true,
  target: "es2022",
  legalComments: "linked",
  logLevel: "warning",
  metafile: true,
};

const pages = {
  ...common,
  entryPoints: {
    crew: path.join(src, "crew.js"),
    er: path.join(src, "er.js"),
    console: path.join(src, "console.js"),
  },
  outdir: dist,
  format: "esm",
  splitting: false,
};

const styles = {
  ...common,
  entryPoints: {
    app: path.join(src, "styles", "app.css"),
    console: path.join(src, "styles", "console.css"),
  },
  outdir: dist,
  loader: { ".png": "file", ".svg": "file" },
  assetNames: "assets/[name]-[hash]",
};

function worker(buildId) {
  return {
    ...common,
    entryPoints: { sw: path.join(src, "service-worker.js") },
    outdir: dist,
    format: "iife",
    define: { __WEER_BUILD__: JSON.stringify(buildId) },
  };
}

async function koreaOutline() {
  const topology = JSON.parse(await readFile(require.resolve(KOREA_SOURCE), "utf8"));
  const geometry = topology.objects.countries.geometries.find((g) => g.id === KOREA_FEATURE_ID);
  if (!geometry) throw new Error(`${KOREA_SOURCE} has no feature ${KOREA_FEATURE_ID}`);
  const outline = feature(topology, geometry);
  const factor = 10 ** KOREA_DECIMALS;
  const round = (value) =>
    Array.isArray(value) ? value.map(round) : Math.round(value * factor) / factor;
  outline.geometry.coordinates = round(outline.geometry.coordinates);
  outline.properties = { name: outline.properties?.name ?? "South Korea", source: KOREA_SOURCE };
  const text = JSON.stringify(outline);
  await writeFile(path.join(dist, "korea.json"), text);
  return text;
}

function outputsOf(...results) {
  return results.flatMap((r) => Object.keys(r.metafile.outputs)).filter((f) => !f.endsWith(".map"));
}

async function report(files) {
  const rows = [];
  let overBudget = false;
  for (const file of files) {
    const bytes = await readFile(file);
    const gzip = gzipSync(bytes, { level: 9 }).length;
    const name = path.relative(dist, file);
    const page = ["crew.js", "er.js", "console.js"].includes(name);
    if (page && gzip > PAGE_BUDGET_GZIP_BYTES) overBudget = true;
    rows.push({ name, bytes: bytes.length, gzip, page });
  }
  const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
  console.log("dist/ (gzip -9):");
  for (const row of rows) {
    const budget = row.page ? `  (budget ${kb(PAGE_BUDGET_GZIP_BYTES)})` : "";
    console.log(`  ${row.name.padEnd(34)} ${kb(row.bytes).padStart(10)}  gzip ${kb(row.gzip).padStart(9)}${budget}`);
  }
  if (overBudget) {
    console.error("A page's JS is over its gzipped budget.");
    process.exitCode = 1;
  }
}

async function buildOnce() {
  await rm(dist, { recursive: true, force: true });
  await mkdir(dist, { recursive: true });
  const [pageResult, styleResult, korea] = await Promise.all([
    esbuild.build(pages),
    esbuild.build(styles),
    koreaOutline(),
  ]);
  const built = outputsOf(pageResult, styleResult);
  // The worker's cache name changes whenever any cached asset changes, so a new deploy
  // replaces the old shell instead of serving it forever.
  const hash = createHash("sha256").update(korea);
  for (const file of built.sort()) hash.update(await readFile(file));
  const workerResult = await esbuild.build(worker(hash.digest("hex").slice(0, 12)));
  await report([...built, path.join(dist, "korea.json"), ...outputsOf(workerResult)]);
}

async function buildWatching() {
  await mkdir(dist, { recursive: true });
  await koreaOutline();
  const contexts = await Promise.all(
    [pages, styles, worker(`dev-${Date.now()}`)].map((options) => esbuild.context(options)),
  );
  await Promise.all(contexts.map((c) => c.watch()));
  console.log(`watching ${path.relative(process.cwd(), src)} …`);
}

if (watch) await buildWatching();
else await buildOnce();
