// The page's configuration, rendered by the Django view as
// {{ page_config|json_script:"weer-config" }}: {ws_url, map_tile_url, map_tile_attribution,
// lang, static}.

const DEFAULTS = { ws_url: "/ws/", map_tile_url: null, map_tile_attribution: null, lang: "ko", static: "/static/frontend/dist/" };

function read() {
  const element = globalThis.document?.getElementById("weer-config");
  if (!element) return { ...DEFAULTS };
  try {
    return { ...DEFAULTS, ...JSON.parse(element.textContent) };
  } catch {
    return { ...DEFAULTS };
  }
}

export const config = read();

/** The absolute ws(s):// URL of the websocket endpoint (ws_url may be a path). */
export function websocketUrl(wsUrl = config.ws_url, location = globalThis.location) {
  const url = new URL(wsUrl, location.href);
  if (url.protocol === "http:") url.protocol = "ws:";
  if (url.protocol === "https:") url.protocol = "wss:";
  return url.href;
}

/** The URL of a built asset (korea.json, …) under the configured static prefix. */
export function assetUrl(name) {
  const base = config.static.endsWith("/") ? config.static : `${config.static}/`;
  return `${base}${name}`;
}
