// Registers the service worker (served by Django at /sw.js with scope /) and tells it which
// URLs this page loaded, so they are cached whatever the static files are named.

export function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return;
  const urls = () => [
    location.pathname,
    ...[...document.querySelectorAll("script[src]")].map((s) => s.src),
    ...[...document.querySelectorAll('link[rel="stylesheet"][href]')].map((l) => l.href),
    ...performance.getEntriesByType("resource").map((e) => e.name).filter((u) => u.includes("/static/")),
  ];
  const tell = (worker) => worker?.postMessage({ type: "cache-urls", urls: [...new Set(urls())] });
  navigator.serviceWorker
    .register("/sw.js", { scope: "/" })
    .then(() => navigator.serviceWorker.ready)
    .then((registration) => tell(registration.active))
    .catch(() => {
      /* no worker (plain http on a LAN, or /sw.js missing): the page works, it just won't open offline */
    });
}
