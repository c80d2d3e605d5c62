// The ER screen's alarm: one looping <audio> that sounds while any request waits to be
// acknowledged. Browsers may refuse sound until someone has touched the page (autoplay
// policy): `probe()` finds out with a silent play, and `state` is then "enabled" or
// "blocked"; `enable()`, called from a click, unlocks it for the rest of the session.
// `silence(ms)` mutes a running alarm for a while without acknowledging anything; a new
// request or a reminder ends the silence (`start({reAlert: true})`).
// Dispatches "change".
import { alarmSound } from "./sounds.js";

export class Alarm extends EventTarget {
  constructor(audio) {
    super();
    this.audio = audio;
    this.audio.src = alarmSound();
    this.audio.loop = true;
    this.audio.preload = "auto";
    this.state = "unknown"; // unknown | enabled | blocked
    this.wanted = false;
    this.silencedUntil = 0;
    this._silenceTimer = null;
  }

  get playing() {
    return !this.audio.paused;
  }

  get silenced() {
    return this.silencedUntil > Date.now();
  }

  async probe() {
    this.audio.volume = 0;
    try {
      await this.audio.play();
      if (!this.wanted) this.audio.pause();
      this._set("enabled");
    } catch {
      this._set("blocked");
    } finally {
      this.audio.volume = 1;
    }
  }

  /** From a user gesture: unlock sound (and sound now if an alert is waiting). */
  async enable() {
    try {
      this.audio.volume = this.wanted ? 1 : 0;
      await this.audio.play();
      if (!this.wanted) {
        this.audio.pause();
        this.audio.volume = 1;
      }
      this._set("enabled");
    } catch {
      this._set("blocked");
    }
  }

  start({ reAlert = false } = {}) {
    if (reAlert) this.silencedUntil = 0;
    const fresh = !this.wanted || reAlert;
    this.wanted = true;
    if (this.silenced) return;
    if (fresh) this.audio.currentTime = 0;
    this.audio.volume = 1;
    this.audio.play().then(
      () => this._set("enabled"),
      () => this._set("blocked"),
    );
    this._emit();
  }

  stop() {
    this.wanted = false;
    this.silencedUntil = 0;
    this.audio.pause();
    this.audio.currentTime = 0;
    this._emit();
  }

  silence(ms) {
    this.silencedUntil = Date.now() + ms;
    this.audio.pause();
    clearTimeout(this._silenceTimer);
    this._silenceTimer = setTimeout(() => {
      this.silencedUntil = 0;
      if (this.wanted) this.start();
      this._emit();
    }, ms);
    this._emit();
  }

  _set(state) {
    if (this.state !== state) this.state = state;
    this._emit();
  }

  _emit() {
    this.dispatchEvent(new Event("change"));
  }
}
