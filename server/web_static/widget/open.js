/**
 * The landing page of an e-mail link (R11) loads this one script: it adds the
 * widget's style sheet and opens the conversation named by the page's
 * `<meta name="parley-session">`, `parley-room` and `parley-ws`.
 *
 *     <script type="module" src="/widget/open.js"></script>
 */

import { startFromLandingPage } from "./widget.js";

if (!document.querySelector('link[href$="/widget/widget.css"]')) {
  const sheet = document.createElement("link");
  sheet.rel = "stylesheet";
  sheet.href = new URL("./widget.css", import.meta.url).href;
  document.head.append(sheet);
}

startFromLandingPage(document).catch((err) => {
  const line = document.createElement("p");
  line.setAttribute("role", "alert");
  line.className = "parley-error";
  line.textContent = err?.code === "unauthorized" ? "Ce lien a expiré. / This link has expired." : String(err?.message ?? err);
  (document.getElementById("parley-conversation") ?? document.body).append(line);
});
