// How a bed count reads, for the crew's rows and the ER's own counts: "5 / 15"; over capacity
// "정원 초과 3 / 12" (the upstream's negative count), never a bare negative; unknown "—",
// never 0. A value that just changed shows "old → new" and carries data-flash="on".
import { html } from "lit";

import { countState, flagState } from "../bed-fields.js";
import { t } from "../i18n.js";
import { icon } from "./icons.js";

export function countText(value) {
  const state = countState(value);
  if (state.kind === "unknown") return "—";
  if (state.kind === "over") return t("beds.over_short", { n: state.over });
  return String(state.value);
}

function flagText(value) {
  return t(`flag.${flagState(value)}`);
}

/** The "old → new" of a flash (counts or flags), or nothing. */
export function flashNote(flash, kind = "count") {
  if (!flash) return "";
  const show = kind === "flag" ? flagText : countText;
  return html`<span class="flash-note" data-testid="flash-note"><span class="visually-hidden">${t("flash.changed")}</span>${show(flash.old)} → ${show(flash.new)}</span>`;
}

/**
 * A count cell: `value` available of `capacity`, with the label above. `flash` is the
 * board's {old, new} for the value (or the capacity), null when it did not just change.
 */
export function bedCount({ label, value, capacity, flash = null, testid, size = "normal" }) {
  const state = countState(value, capacity);
  const capacityText = state.capacity === null ? "—" : String(state.capacity);
  let main;
  if (state.kind === "unknown") {
    main = html`<span class="count__value count__value--unknown" title=${t("beds.unknown")}>—<span class="visually-hidden">${t("beds.unknown")}</span></span>`;
  } else if (state.kind === "over") {
    main = html`<span class="count__value count__value--over">${icon("warning")}${t("beds.over", { n: state.over })}</span>`;
  } else if (state.kind === "none") {
    main = html`<span class="count__value count__value--none">0<span class="count__tag">${t("beds.full")}</span></span>`;
  } else {
    main = html`<span class="count__value">${state.value}</span>`;
  }
  return html`<div class="count count--${size} count--${state.kind} ${flash ? "is-flashing" : ""}"
      data-testid=${testid} data-kind=${state.kind} data-value=${state.value ?? ""} data-flash=${flash ? "on" : "off"}>
    <span class="count__label">${label}</span>
    <span class="count__line">${main}<span class="count__capacity">/ ${capacityText}</span></span>
    ${flashNote(flash)}
  </div>`;
}
