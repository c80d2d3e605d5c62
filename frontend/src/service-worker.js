// The service worker (served at /sw.js, scope /): keeps the app shell so /crew/ and /er/ open
// without network, e.g. a tablet reloaded in a tunnel. The shell is the page HTML and its
// built assets; the last known hospital data is not here but in the page's IndexedDB
// (saved-state.js), because only the page knows which values are old.
//
// Pages (navigations to /crew/, /er/): network first, the cached copy when the network fails.
// Built assets under /static/: cache first, refreshed in the background. Anything else
// (/api/, /ws/, tiles, other pages) is not touched. The cache is named after the build, so a
// new deploy's worker starts a fresh cache and drops the old one.
/* global __WEER_BUILD__ */

const CACHE = `weer-shell-${__WEER_BUILD__}`;
const SHELL_PAGES = ["/crew/", "/er/"];
const DIST = "/static/frontend/dist/";
const PRECACHE = [...SHELL_PAGES, `${DIST}crew.js`, `${DIST}er.js`, `${DIST}app.css`, `${DIST}korea.json`];

self.addEventListener("install", (event) => {
  // Best effort: a URL that fails (e.g. hashed static names in production) is cached later,
  // when a page tells us what it loaded.
  event.waitUntil(
    caches.open(CACHE).then((cache) => Promise.all(PRECACHE.map((url) => cache.add(new Request(url, { cache: "reload" })).catch(() => null)))),
  );
  self.skipWaiting();
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((n) => n.startsWith("weer-shell-") && n !== CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

// A page lists the URLs it loaded (its own page and every script, stylesheet and asset), so
// they are cached whatever names the static files have.
self.addEventListener("message", (event) => {
  const message = event.data;
  if (message?.type !== "cache-urls" || !Array.isArray(message.urls)) return;
  const urls = message.urls.filter((url) => isShellPage(new URL(url, self.location.href)) || isStatic(new URL(url, self.location.href)));
  event.waitUntil(caches.open(CACHE).then((cache) => Promise.all(urls.map((url) => cache.add(url).catch(() => null)))));
});

function isShellPage(url) {
  return url.origin === self.location.origin && SHELL_PAGES.includes(url.pathname);
}

function isStatic(url) {
  return url.origin === self.location.origin && url.pathname.startsWith("/static/");
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (request.mode === "navigate" && isShellPage(url)) {
    event.respondWith(networkFirst(request, url));
  } else if (isStatic(url)) {
    event.respondWith(cacheFirst(request, event));
  }
});

async function networkFirst(request, url) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    // Keep only a real page: not a redirect to /login/ or an error page.
    if (response.ok && !response.redirected) await cache.put(url.pathname, response.clone());
    return response;
  } catch (error) {
    const cached = await cache.match(url.pathname);
    if (cached) return cached;
    throw error;
  }
}

async function cacheFirst(request, event) {
  const cache = await caches.open(CACHE);
  const cached = await cache.match(request, { ignoreSearch: true });
  const refresh = fetch(request).then((response) => {
    if (response.ok) cache.put(request, response.clone());
    return response;
  });
  if (cached) {
    event.waitUntil(refresh.catch(() => null));
    return cached;
  }
  return refresh;
}
