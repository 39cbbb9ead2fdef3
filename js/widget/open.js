/**
 * The landing page of an e-mail link (R11) loads this one script: it adds the
 * widget's style sheet (unless the page has it) and opens the conversation named
 * by the page's `<meta name="parley-session">`, `parley-room` and `parley-ws`.
 * What goes wrong is shown on the page by the widget, in the member's language.
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

startFromLandingPage(document).catch(() => {
  /* shown on the page: the error, in the member's words, and what to do */
});
