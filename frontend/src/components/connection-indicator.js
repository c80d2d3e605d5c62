// The live / reconnecting / offline state of the page's LiveConnection, always with text and
// an icon (never colour alone), and the time the last message arrived.
import { html } from "lit";

import { t, formatClock } from "../i18n.js";
import { Status } from "../protocol.js";
import { icon } from "./icons.js";
import { LightElement } from "./light-element.js";

const ICONS = {
  [Status.LIVE]: "live",
  [Status.CONNECTING]: "sync",
  [Status.RECONNECTING]: "sync",
  [Status.OFFLINE]: "offline",
  [Status.STOPPED]: "stop",
};

export class ConnectionIndicator extends LightElement {
  static properties = { connection: { attribute: false } };

  constructor() {
    super();
    this.connection = null;
    this._onStatus = () => this.requestUpdate();
  }

  connectedCallback() {
    super.connectedCallback();
    this._timer = setInterval(() => this.requestUpdate(), 1000);
  }

  disconnectedCallback() {
    super.disconnectedCallback();
    clearInterval(this._timer);
    this.connection?.removeEventListener("status", this._onStatus);
  }

  willUpdate(changed) {
    if (changed.has("connection")) {
      changed.get("connection")?.removeEventListener("status", this._onStatus);
      this.connection?.addEventListener("status", this._onStatus);
    }
  }

  render() {
    const status = this.connection?.status ?? Status.CONNECTING;
    const last = this.connection?.lastMessageAt;
    const reason = status === Status.STOPPED && this.connection?.stoppedReason;
    return html`<div class="connection connection--${status}" role="status" aria-live="polite"
        data-testid="connection-indicator" data-status=${status}>
      ${icon(ICONS[status] ?? "sync")}
      <span class="connection__state" data-testid="connection-state">${t(`connection.${status}`)}</span>
      ${reason ? html`<span class="connection__reason">${t(`stopped.${reason}`, {}, t("stopped.other"))}</span>` : ""}
      <span class="connection__last" data-testid="connection-last-update">
        ${last ? t("connection.last_update", { time: formatClock(last) }) : t("connection.no_update")}
      </span>
    </div>`;
  }
}

customElements.define("weer-connection-indicator", ConnectionIndicator);
