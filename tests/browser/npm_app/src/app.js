// A marketplace's own page, bundled: the widget comes from the npm package, not from the hub.
import { ParleyWidget } from "parley-client/widget";
import "parley-client/widget.css";

const hub = document.querySelector('meta[name="chat-hub"]').content; // the app's configuration
const token = new URLSearchParams(location.hash.slice(1)).get("token");
history.replaceState(null, "", location.pathname);
const { listings, users } = await (await fetch("catalog.json")).json();
window.parleyWidget = await ParleyWidget.start(document.getElementById("chat"), {
  url: hub,
  token,
  catalog: listings,
  users,
  showCatalog: true,
});
