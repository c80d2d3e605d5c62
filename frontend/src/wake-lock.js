// Keeps a wall screen on (Screen Wake Lock API). The lock is dropped by the browser whenever
// the page is hidden, so it is requested again each time the page becomes visible.
// Dispatches "change"; `state` is "on", "off" (refused, e.g. low battery) or "unsupported".

export class ScreenWakeLock extends EventTarget {
  constructor() {
    super();
    this.state = "wakeLock" in navigator ? "off" : "unsupported";
    this._sentinel = null;
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.acquire();
    });
  }

  async acquire() {
    if (this.state === "unsupported" || this._sentinel) return;
    try {
      this._sentinel = await navigator.wakeLock.request("screen");
      this._sentinel.addEventListener("release", () => {
        this._sentinel = null;
        this._set("off");
      });
      this._set("on");
    } catch {
      this._set("off");
    }
  }

  _set(state) {
    if (this.state === state) return;
    this.state = state;
    this.dispatchEvent(new Event("change"));
  }
}
