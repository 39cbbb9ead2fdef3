/**
 * The demo marketplace: a catalogue of the listings `parley demo` seeded, and the
 * widget, for the member whose token is in the page's address.
 *
 * The token comes from the fragment (`/demo#token=...`, never sent to a server)
 * or the query (`/demo?token=...`); it is then kept in this tab's sessionStorage
 * and removed from the address bar, so it is neither bookmarked nor shared by a
 * copied link. The page talks to the hub that serves it (its CSP allows no other).
 */

import { ParleyWidget, sameOriginWebSocket, startFromLandingPage } from "../widget/widget.js";

const app = document.getElementById("app");
const status = document.getElementById("demo-status");

function say(...lines) {
  const box = document.createElement("div");
  box.className = "demo-help";
  for (const line of lines) {
    const p = document.createElement("p");
    p.textContent = line;
    box.append(p);
  }
  app.replaceChildren(box);
}

function fromAddress() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const query = new URLSearchParams(location.search);
  const token = fragment.get("token") ?? query.get("token");
  if (token) {
    sessionStorage.setItem("parley-demo-token", token);
    history.replaceState(null, "", location.pathname);
  }
  return { token: sessionStorage.getItem("parley-demo-token"), ws: sameOriginWebSocket() };
}

async function main() {
  if (document.querySelector('meta[name="parley-session"]')) {
    app.replaceChildren();
    await startFromLandingPage(document, { root: app });
    return;
  }
  const { token, ws } = fromAddress();
  if (!token) {
    say(
      "No member token in the address. Run `parley demo` next to a running hub (`make run`) and open one of the links it prints.",
      "Aucun jeton de membre dans l'adresse. Lancez `parley demo` à côté d'un hub en marche (`make run`) et ouvrez un des liens affichés.",
    );
    return;
  }
  const catalog = await (await fetch(new URL("./catalog.json", import.meta.url))).json();
  const base = new URL("./photos/", import.meta.url);
  const listings = catalog.listings
    .filter((l) => (l.status ?? "active") === "active")
    .map((l) => ({ ...l, photo_url: new URL(l.photo, base).href }));
  status?.remove();
  const widget = await ParleyWidget.start(app, { url: ws, token, catalog: listings, users: catalog.users, showCatalog: true });
  window.parleyWidget = widget; // for a curious developer's console
}

main().catch((err) => {
  if (err?.code === "unauthorized") sessionStorage.removeItem("parley-demo-token");
  if (err?.problem) return; // the widget shows what went wrong, in the member's language
  say(`Parley: ${err?.code ?? "error"}: ${err?.message ?? err}`, "Run `parley demo` again for fresh links. / Relancez `parley demo` pour de nouveaux liens.");
});
