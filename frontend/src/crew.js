// The ambulance tablet's entry: signs in from stored tokens, builds the live connection
// (window.weerLive), the hospital board (beds.all), the crew's reservation book
// (crew.<id>) and the outbox, restores the last known state for an offline start, and
// mounts <weer-crew-app>.
import { api, apiAllPages } from "./api.js";
import { auth, loginUrl, requireRole } from "./auth.js";
import { config, websocketUrl } from "./config.js";
import { HospitalBoard } from "./hospital-board.js";
import { applyDocumentLanguage } from "./i18n.js";
import { Outbox } from "./outbox.js";
import { LiveConnection, SignedOut, Status } from "./protocol.js";
import { ReservationBook } from "./reservation-book.js";
import { keepSaved, loadSaved } from "./saved-state.js";
import { registerServiceWorker } from "./sw-register.js";
import "./components/connection-indicator.js";
import "./components/crew-app.js";

const SAVED_KEY = "crew.board";
const HOSPITAL_PAGE_SIZE = 100;

async function main() {
  applyDocumentLanguage();
  const user = requireRole("ambulance");
  if (!user) return;
  registerServiceWorker();

  const connection = new LiveConnection({ url: websocketUrl(config.ws_url), tokens: auth });
  window.weerLive = connection;
  const headerIndicator = document.getElementById("weer-connection");
  if (headerIndicator) headerIndicator.connection = connection;

  const board = new HospitalBoard({ fetchDetail: (hpid) => api(`/api/hospitals/${encodeURIComponent(hpid)}`, { authenticated: false }) });
  const book = new ReservationBook({ fetchOne: (id) => api(`/api/reservations/${id}`) });
  const outbox = new Outbox({ userId: user.user_id });
  window.weerCrew = { board, book, outbox };

  board.restore(await loadSaved(SAVED_KEY));
  const persist = keepSaved(SAVED_KEY, () => board.toSaved());
  board.addEventListener("change", persist);

  connection.subscribe("beds.all", {
    onSnapshot: (data, meta) => board.applySnapshot(data, meta),
    onEvent: (event) => board.applyEvent(event),
  });
  connection.subscribe(`crew.${user.user_id}`, {
    onSnapshot: (data) => book.applySnapshot(data),
    onEvent: (event) => book.applyEvent(event),
  });

  const app = document.createElement("weer-crew-app");
  Object.assign(app, { connection, board, book, outbox, user, headerIndicator: Boolean(headerIndicator) });
  const mount = document.getElementById("weer-app") ?? document.body;
  mount.replaceChildren(app);

  // Names and places of every ER (public); retried whenever the connection comes back.
  let hospitalsLoaded = false;
  const loadHospitals = async () => {
    if (hospitalsLoaded) return;
    try {
      board.setInfo(await apiAllPages("/api/hospitals", { page_size: String(HOSPITAL_PAGE_SIZE) }, { authenticated: false }));
      hospitalsLoaded = true;
    } catch {
      /* offline: the restored copy stands until the next try */
    }
  };
  const loadRegions = () =>
    api("/api/regions", { authenticated: false }).then(
      (regions) => (app.regions = regions),
      () => {},
    );
  api("/api/auth/me").then(
    (profile) => (app.profile = profile),
    (error) => {
      if (error instanceof SignedOut) location.assign(loginUrl());
    },
  );

  connection.addEventListener("status", (event) => {
    if (event.detail.status === Status.LIVE) {
      loadHospitals();
      if (!app.regions.length) loadRegions();
      outbox.flush();
    }
    if (event.detail.status === Status.STOPPED && connection.stoppedReason === "signed_out") location.assign(loginUrl());
  });
  window.addEventListener("online", () => outbox.flush());
  outbox.addEventListener("signedout", () => location.assign(loginUrl()));

  connection.start();
  loadHospitals();
  loadRegions();
  outbox.flush();
}

main();
