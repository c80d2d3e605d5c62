// Our components render into their own light DOM, not a shadow root: the pages have one
// stylesheet (app.css, which also carries Leaflet's CSS, and Leaflet needs its CSS where its
// map is), and tests and assistive tech see one plain document.
import { LitElement } from "lit";

export class LightElement extends LitElement {
  createRenderRoot() {
    return this;
  }

  /** Dispatch a bubbling, composed CustomEvent. */
  emit(type, detail = {}) {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }
}
