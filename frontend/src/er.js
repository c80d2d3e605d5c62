// The ER screen's entry: signs in from stored tokens (hospital staff only), builds the live
// connection (window.weerLive), the request book (hospital.<hpid>) and the ER's own bed
// board (beds.<its region>, read for its hpid), keeps the screen awake, and mounts
// <weer-er-app>.
import { api } from "./api.js";
import { auth, loginUrl, requireRole } from "./auth.js";
import { config, websocketUrl } from "./config.js";
import { HospitalBoard } from "./hospital-board.js";
import { applyDocumentLanguage } from "./i18n.js";
import { LiveConnection, Status } from "./protocol.js";
import { ReservationBook } from "./reservation-book.js";
import { registerServiceWorker } from "./sw-register.js";
import { ScreenWakeLock } from "./wake-lock.js";
import "./components/connection-indicator.js";
import "./components/er-app.js";

const HOSPITAL_KEY = "weer.er.hospital";

function savedHospital(hpid) {
  try {
    const saved = JSON.parse(localStorage.getItem(HOSPITAL_KEY) ?? "null");
    return saved?.hpid === hpid ? saved : null;
  } catch {
    return null;
  }
}

async function main() {
  applyDocumentLanguage();
  const user = requireRole("hospital");
  if (!user) return;
  registerServiceWorker();

  const connection = new LiveConnection({ url: websocketUrl(config.ws_url), tokens: auth });
  window.weerLive = connection;
  const headerIndicator = document.getElementById("weer-connection");
  if (headerIndicator) headerIndicator.connection = connection;

  const book = new ReservationBook({ fetchOne: (id) => api(`/api/reservations/${id}`) });
  const board = new HospitalBoard({ fetchDetail: (hpid) => api(`/api/hospitals/${encodeURIComponent(hpid)}`, { authenticated: false }) });
  const wakeLock = new ScreenWakeLock();
  window.weerEr = { book, board };

  connection.subscribe(`hospital.${user.hpid}`, {
    onSnapshot: (data) => book.applySnapshot(data),
    onEvent: (event) => book.applyEvent(event),
  });

  const app = document.createElement("weer-er-app");
  Object.assign(app, { connection, board, book, user, wakeLock, hospital: savedHospital(user.hpid), headerIndicator: Boolean(headerIndicator) });
  (document.getElementById("weer-app") ?? document.body).replaceChildren(app);

  // Its own region's bed stream, once we know the region (from the hospital's record; kept
  // for a start without network).
  let bedsStream = null;
  const followRegion = (hospital) => {
    if (!hospital?.region_code || bedsStream) return;
    bedsStream = `beds.${hospital.region_code}`;
    connection.subscribe(bedsStream, {
      onSnapshot: (data, meta) => board.applySnapshot(data, meta),
      onEvent: (event) => {
        if (event.data?.hpid === user.hpid || event.type === "beds.stale") board.applyEvent(event);
      },
    });
  };
  const loadHospital = () =>
    api(`/api/hospitals/${encodeURIComponent(user.hpid)}`, { authenticated: false }).then(
      (hospital) => {
        const info = { hpid: hospital.hpid, name: hospital.name, region_code: hospital.region_code, region_name: hospital.region_name };
        localStorage.setItem(HOSPITAL_KEY, JSON.stringify(info));
        app.hospital = info;
        board.setInfo([hospital]);
        board.ensureDetails([hospital.hpid]);
        followRegion(info);
      },
      () => {},
    );
  followRegion(app.hospital);

  connection.addEventListener("status", (event) => {
    if (event.detail.status === Status.LIVE && !bedsStream) loadHospital();
    if (event.detail.status === Status.STOPPED && connection.stoppedReason === "signed_out") location.assign(loginUrl());
  });
  connection.start();
  loadHospital();
}

main();
