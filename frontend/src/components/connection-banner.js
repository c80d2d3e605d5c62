// A wide banner whenever the page is not live, so an empty list or queue is never mistaken for
// a current one. The crew's says its values are the last known ones; the ER's says plainly
// that new requests cannot arrive (the queue and counts underneath are the last known).
import { html, nothing } from "lit";

import { t, formatClock } from "../i18n.js";
import { Status } from "../protocol.js";
import { icon } from "./icons.js";
import { LightElement } from "./light-element.js";

export class ConnectionBanner extends LightElement {
  static properties = { connection: { attribute: false }, variant: { type: String } };

  constructor() {
    super();
    this.connection = null;
    this.variant = "crew";
    this._onStatus = () => this.requestUpdate();
  }

  connectedCallback() {
    super.connectedCallback();
    this._timer = setInterval(() => this.requestUpdate(), 2000);
  }

  disconnectedCallback() {
    super.disconnectedCallback();
    clearInterval(this._timer);
  }

  willUpdate(changed) {
    if (changed.has("connection")) {
      changed.get("connection")?.removeEventListener("status", this._onStatus);
      this.connection?.addEventListener("status", this._onStatus);
    }
  }

  render() {
    const status = this.connection?.status ?? Status.CONNECTING;
    if (status === Status.LIVE) return nothing;
    const last = this.connection?.lastMessageAt;
    const reason = status === Status.STOPPED ? this.connection?.stoppedReason : null;
    return html`<div class="banner banner--${this.variant} banner--${status}" role="alert" data-testid="disconnected-banner" data-status=${status}>
      ${icon(status === Status.OFFLINE ? "offline" : status === Status.STOPPED ? "stop" : "sync", "icon icon--big")}
      <div>
        <strong class="banner__title">${t(`banner.${this.variant}.${status}`)}</strong>
        <span class="banner__text">${t(`banner.${this.variant}.text`)}
          ${last ? t("banner.since", { time: formatClock(last) }) : nothing}
          ${reason ? html`<br>${t(`stopped.${reason}`, {}, t("stopped.other"))}` : nothing}</span>
      </div>
      ${status === Status.STOPPED ? html`<a class="button" href="/login/?next=${encodeURIComponent(location.pathname)}" data-testid="banner-login">${t("banner.login_again")}</a>` : nothing}
    </div>`;
  }
}

customElements.define("weer-connection-banner", ConnectionBanner);
