// The console's entry (administrators only; the server already refused anyone else): builds
// the live connection (window.weerLive), follows the `metrics` stream into a MetricsHistory
// (window.weerConsole) and mounts <weer-console-app>.
import { auth, requireRole } from "./auth.js";
import { config, websocketUrl } from "./config.js";
import { applyDocumentLanguage } from "./i18n.js";
import { MetricsHistory } from "./metrics-history.js";
import { LiveConnection } from "./protocol.js";
import "./components/connection-indicator.js";
import "./components/console-app.js";

function main() {
  applyDocumentLanguage();
  const user = requireRole("admin");
  if (!user) return;

  const connection = new LiveConnection({ url: websocketUrl(config.ws_url), tokens: auth });
  window.weerLive = connection;
  const indicator = document.getElementById("weer-connection");
  if (indicator) indicator.connection = connection;

  const history = new MetricsHistory();
  window.weerConsole = { history };
  connection.subscribe("metrics", {
    onSnapshot: (data) => history.add(data),
    onEvent: (event) => history.add(event.data),
  });

  const app = document.createElement("weer-console-app");
  app.history = history;
  (document.getElementById("weer-app") ?? document.body).replaceChildren(app);
  connection.start();
}

main();
