/**
 * Parley's chat widget: vanilla DOM on top of the JavaScript client (../parley.js).
 *
 *     import { ParleyWidget } from "/widget/widget.js";
 *     await ParleyWidget.start(document.querySelector("#chat"), { url, token, catalog });
 *
 * Screens: a listing's public comments under its photo and price (live, with `@`
 * autocomplete and the masked-detail notice of R8); "Make an offer" next to
 * "Buy", the seller's switch, likers and offers to likers (R5, R6), each
 * negotiation with its prices, whose turn it is and a countdown (R7); the
 * notification bell; "My orders" (R10) and the private conversation of an order
 * (R9) with typing, read receipts, status messages and the off-platform
 * disclaimer (R12). `startFromLandingPage()` opens the one conversation of an
 * e-mail link (R11).
 *
 * Members' words are always inserted as text (`textContent`, text nodes), never
 * as HTML. Every control is a native button, input or link, labelled; lists that
 * grow live are `role="log"`; the language follows the member and can be switched.
 */

import { ParleyClient } from "../parley.js";
import { Bell } from "./bell.js";
import { ConversationView } from "./conversation.js";
import { View, h, safeUrl } from "./dom.js";
import { ListingView } from "./listing.js";
import { OrdersView } from "./orders.js";
import { LOCALES, STRINGS, formatCountdown, formatMoney, pickLocale } from "./strings.js";

export { h } from "./dom.js";

// The catalogue of the demo marketplace (a host app shows its own).

class CatalogView extends View {
  constructor(widget) {
    super(widget);
    this.heading = this.label(h("h2", { tabindex: "-1" }), (t) => t.catalog);
    this.grid = h("ul", { class: "parley-catalog" });
    this.el = h("section", { class: "parley-view parley-catalog-view" }, this.heading, this.grid);
    this.refresh();
  }

  refresh() {
    this.grid.replaceChildren(
      ...this.w.listings.map((listing) =>
        h(
          "li",
          { class: "parley-card" },
          h(
            "button",
            { type: "button", class: "parley-card-button", "data-listing": listing.id, onclick: () => this.w.openListing(listing.id) },
            h("img", { src: safeUrl(listing.photo_url, { images: true }), alt: "", class: "parley-card-photo" }),
            h("span", { class: "parley-card-title", text: listing.title }),
            h("span", { class: "parley-card-price", text: this.w.money(listing.price.amount, listing.price.currency) }),
            h("span", { class: "parley-card-seller", text: this.t.by(this.w.nameOf(listing.seller_id)) }),
          ),
        ),
      ),
    );
  }

  focus() {
    this.heading.focus();
  }
}

// The widget: a bar (member, language, bell, My orders) over one screen at a time.

export class ParleyWidget {
  /**
   * Connect and show the widget in `root`; resolves with the widget.
   * Options: `url` and `token` (or a connected `client`); `locale` (default: the member's);
   * `catalog` (listings `{id, title, price: {amount, currency}, photo_url, seller_id, offers_enabled}`)
   * and `users` (`{id, name}`) of the host page; `listing` (an id) to open first;
   * `room` (an order room) to open first, with `info` (`{title, order_id, photo_url,
   * counterpart: {id, name}}`); without either, "My orders"; `showCatalog: true` shows
   * the `catalog` as a screen of its own (the first, and where "Back" ends);
   * `appUrl` for the "Open the app" link of a problem; `clientOptions` for `ParleyClient`;
   * `onStarted(widget)`, called once it shows (also after "Try again").
   *
   * When it cannot start (an expired or refused token, no network, the hub unavailable),
   * it shows in `root` what went wrong and what to do, in the member's language (`locale`,
   * else the page's), with "Try again" when trying again can help, and rejects with the
   * error (`ParleyError`: its `code`, and `problem`: `expired`, `refused`, `offline` or
   * `unavailable`).
   */
  static async start(root, options = {}) {
    let client = options.client ?? null;
    try {
      client ??= await ParleyClient.connect(options.url, options.token, options.clientOptions);
      const widget = new ParleyWidget(root, client, options);
      await widget.init(options);
      options.onStarted?.(widget);
      return widget;
    } catch (err) {
      if (!options.client) client?.close();
      showStartProblem(root, err, options, () => ParleyWidget.start(root, options).catch(() => {}));
      throw err;
    }
  }

  constructor(root, client, options = {}) {
    this.root = root;
    this.client = client;
    this.locale = pickLocale(options.locale ?? client.user?.locale);
    this.listings = (options.catalog ?? []).map((l) => ({ ...l }));
    this.names = new Map((options.users ?? []).map((u) => [u.id, u.name]));
    if (client.user) this.names.set(client.user.id, client.user.name);
    this.scoped = !!client.scope;
    this.showCatalog = options.showCatalog === true;
    this.serverOffset = 0;
    this.view = null;
    this.stack = [];
    this.bell = null;
    this.blocked = new Set(); // members this member blocks: their public comments are hidden
  }

  get t() {
    return STRINGS[this.locale];
  }

  /** The locale for numbers, money and dates. */
  get intl() {
    return this.t.intl;
  }

  async init(options) {
    this.buildShell();
    this.client.on("state", (e) => this.showState(e.state));
    this.client.on("closed", (e) => this.showState("closed", e));
    this.ticker = setInterval(() => this.tick(), 1000);
    this.client
      .ping()
      .then(({ ts }) => (this.serverOffset = ts - Date.now()))
      .catch(() => {});
    if (!this.scoped) {
      this.bell = new Bell(this);
      this.bellSlot.replaceChildren(this.bell.el);
      await Promise.all([this.bell.load(), this.loadBlocks()]);
    }
    const info = options.info ?? {};
    if (this.scoped) await this.show(() => new ConversationView(this, this.client.scope, info), { replace: true });
    else if (options.room) await this.openConversation(options.room, info);
    else if (options.listing) await this.openListing(options.listing);
    else if (this.showCatalog) await this.show(() => new CatalogView(this), { replace: true });
    else await this.openOrders();
  }

  buildShell() {
    const t = this.t;
    this.me = h("span", { class: "parley-me" });
    this.stateLine = h("span", { class: "parley-state", role: "status" });
    this.langSelect = h(
      "select",
      { class: "parley-lang-select", "data-testid": "language", onchange: () => this.setLocale(this.langSelect.value) },
      LOCALES.map((l) => h("option", { value: l, text: STRINGS[l].languageName, lang: l })),
    );
    this.langSelect.value = this.locale;
    this.langLabel = h("label", { class: "parley-lang" }, h("span", { class: "parley-lang-text", text: t.language }), this.langSelect);
    this.ordersButton = this.scoped
      ? null
      : h("button", { type: "button", class: "parley-button parley-orders-button", "data-action": "my-orders", text: t.myOrders, onclick: () => this.openOrders() });
    this.bellSlot = h("span", { class: "parley-bell-slot" });
    this.main = h("div", { class: "parley-main" });
    this.section = h(
      "section",
      { class: "parley", lang: this.locale, "aria-label": t.widgetLabel },
      h("div", { class: "parley-bar" }, this.me, this.stateLine, h("span", { class: "parley-bar-tools" }, this.langLabel, this.ordersButton, this.bellSlot)),
      this.main,
    );
    this.root.replaceChildren(this.section);
    this.labelShell();
  }

  labelShell() {
    const t = this.t;
    this.section.setAttribute("lang", this.locale);
    this.section.setAttribute("aria-label", t.widgetLabel);
    this.me.textContent = t.signedInAs(this.client.user.name);
    this.langLabel.firstChild.textContent = t.language;
    if (this.ordersButton) this.ordersButton.textContent = t.myOrders;
    this.showState(this.client.state);
  }

  setLocale(locale) {
    this.locale = pickLocale(locale);
    this.langSelect.value = this.locale;
    this.labelShell();
    this.bell?.relabel();
    this.view?.relabel();
    this.tick();
  }

  showState(state, closed = null) {
    this.stateLine.dataset.state = state;
    if (state === "closed" && closed?.code === 4001 && this.scoped) this.stateLine.textContent = this.t.sessionExpired;
    else this.stateLine.textContent = { reconnecting: this.t.reconnecting, closed: this.t.closed, connecting: this.t.connecting }[state] ?? "";
  }

  /** Replace the screen; `factory` makes the view, so Back can make it again fresh. */
  async show(factory, { replace = false } = {}) {
    if (this.view) {
      this.view.destroy();
      if (!replace) this.stack.push(this.current);
    }
    this.current = factory;
    this.view = factory();
    this.main.replaceChildren(this.view.el);
    this.view.focus?.();
    try {
      await this.view.start?.();
    } catch (err) {
      this.main.append(h("p", { class: "parley-error", role: "alert", text: this.errorText(err) }));
    }
  }

  /** "Back", when there is a screen to go back to: an earlier one, or the catalogue if shown. */
  backButton(view) {
    if (!this.stack.length && !this.showCatalog) return null;
    return view.label(h("button", { type: "button", class: "parley-link-button parley-back", "data-action": "back", onclick: () => this.back() }), (t) => `← ${t.back}`);
  }

  async back() {
    const previous = this.stack.pop() ?? (this.showCatalog ? () => new CatalogView(this) : null);
    if (previous) await this.show(previous, { replace: true });
  }

  openListing(id) {
    const listing = this.listings.find((l) => l.id === id) ?? {
      id,
      title: id,
      price: { amount: 0, currency: "CAD" },
      seller_id: "",
      offers_enabled: false,
    };
    return this.show(() => new ListingView(this, listing));
  }

  openOrders(role = "purchases") {
    return this.show(() => new OrdersView(this, role));
  }

  openConversation(room, info) {
    return this.show(() => new ConversationView(this, room, info));
  }

  openNotification(n) {
    const room = typeof n.room === "string" ? n.room : "";
    if (room.startsWith("order:")) return this.openConversation(room, { order_id: n.order_id, title: n.listing_title ?? undefined });
    const listing = n.listing_id ?? (room.startsWith("listing:") ? room.slice("listing:".length) : null);
    if (listing) return this.openListing(listing);
    return null;
  }

  async loadBlocks() {
    try {
      for (const b of await this.client.blocks()) this.blocked.add(b.user);
    } catch {
      /* nothing hidden; blocking still works */
    }
  }

  /** Block or unblock a member, then show the screen again (their comments hidden or back). */
  async setBlocked(userId, blocked) {
    if (blocked) await this.client.block(userId);
    else await this.client.unblock(userId);
    if (blocked) this.blocked.add(userId);
    else this.blocked.delete(userId);
    this.view?.refresh?.();
  }

  nameOf(userId) {
    return this.names.get(userId) ?? this.t.someone;
  }

  money(amount, currency) {
    return formatMoney(amount, currency, this.intl);
  }

  countdownText(expiresAt) {
    const left = expiresAt - (Date.now() + this.serverOffset);
    // Past the deadline an answer is refused (R7), even before the hub's sweep says "expired".
    return left > 0 ? this.t.expiresIn(formatCountdown(left, this.t)) : this.t.state.expired;
  }

  tick() {
    for (const el of this.root.querySelectorAll("[data-expires]")) el.textContent = this.countdownText(Number(el.dataset.expires));
  }

  errorText(err) {
    if (err?.local) return err.local;
    const entry = this.t.errors[err?.code];
    if (typeof entry === "function") return entry(err.details, (a) => this.money(a, this.currencyOf(err)));
    return entry ?? this.t.errors.other;
  }

  currencyOf() {
    return this.view?.listing?.price?.currency ?? "CAD";
  }

  /** A system message in the member's language (R3, R9): `data.texts[locale]` first. */
  systemText(m) {
    const data = m.data ?? {};
    const t = this.t;
    // The widget shows R12 as the banner above the conversation: not a second time here.
    if (data.type === "order_opened") return t.orderOpened;
    if (data.texts) return data.texts[this.locale] ?? data.texts.en ?? m.text;
    const line = t.system[data.type];
    if (typeof line === "function") return line(data.count ?? 1);
    return line ?? m.text;
  }

  notificationText(n) {
    const line = this.t.notification[n.kind];
    if (typeof line !== "function") return this.t.notification.other;
    return line(n, this.t, n.amount != null ? this.money(n.amount, n.currency) : "");
  }

  /** Stop: close the connection, clear timers. */
  destroy() {
    clearInterval(this.ticker);
    this.view?.destroy();
    this.bell?.destroy();
    this.client.close();
  }
}

/** The WebSocket URL of the page's own origin (the hub serves the page). */
export function sameOriginWebSocket(loc = location) {
  return `${loc.protocol === "https:" ? "wss" : "ws"}://${loc.host}/`;
}

/** Why the widget could not start, as a member can act on it. */
export function startProblem(err) {
  const code = err?.code;
  const close = err?.closeCode;
  if (code === "unauthorized" || close === 4001) return "expired";
  if (code === "forbidden" || code === "not_found" || close === 4003) return "refused";
  if (code === "unavailable" || close === 1011 || close === 1012 || close === 1013) return "unavailable";
  if (typeof navigator !== "undefined" && navigator.onLine === false) return "offline";
  if (code === "connection_lost" || code === "timeout") return "offline";
  return "unavailable";
}

/** The `locale` a member's JWT names, read (not verified) only to speak their language. */
function tokenLocale(token) {
  if (typeof token !== "string") return null;
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")), (c) => c.charCodeAt(0));
    const locale = JSON.parse(new TextDecoder().decode(bytes)).locale;
    return typeof locale === "string" ? locale : null;
  } catch {
    return null;
  }
}

function showStartProblem(root, err, options, retry) {
  const problem = startProblem(err);
  if (err && typeof err === "object") err.problem = problem;
  const doc = root.ownerDocument ?? document;
  const locale = options.locale ?? tokenLocale(options.token) ?? (doc.documentElement?.lang || globalThis.navigator?.language);
  const t = STRINGS[pickLocale(locale)];
  // Opened from an e-mail link, the way back is "My orders", not this page.
  const words = (options.fromLink ? t.linkProblems[problem] : null) ?? t.startProblems[problem];
  const actions = h("p", { class: "parley-actions" });
  if (problem === "offline" || problem === "unavailable") {
    actions.append(h("button", { type: "button", class: "parley-button parley-primary", "data-action": "retry", text: t.retry, onclick: retry }));
  }
  const app = safeUrl(options.appUrl);
  if (app) actions.append(h("a", { class: "parley-button", href: app, text: t.openApp }));
  root.replaceChildren(
    h(
      "section",
      { class: "parley parley-landing-problem", lang: t.lang, role: "alert", "data-problem": problem },
      h("p", { class: "parley-problem-title", text: words.what }),
      h("p", { text: words.next }),
      actions.childNodes.length ? actions : null,
    ),
  );
}

/**
 * Start on the landing page of an e-mail link (R11): its `<meta name="parley-session">`
 * token opens one conversation, `parley-room`, on `parley-ws`; the page's other
 * `parley-*` metas name the item, the order and the other party. The page's first
 * view (`[data-parley-placeholder]`) gives way to the conversation, or keeps its
 * header above what went wrong. Returns null elsewhere.
 */
export async function startFromLandingPage(doc = document, options = {}) {
  const meta = (name) => doc.querySelector(`meta[name="${name}"]`)?.getAttribute("content") || null;
  const token = meta("parley-session");
  const room = meta("parley-room");
  if (!token || !room) return null;
  const url = meta("parley-ws") ?? sameOriginWebSocket(doc.location);
  const host = options.root ?? doc.getElementById("parley-conversation") ?? doc.body;
  const placeholder = host.querySelector("[data-parley-placeholder]");
  const counterpart = meta("parley-counterpart-id") ? { id: meta("parley-counterpart-id"), name: meta("parley-counterpart") ?? undefined } : undefined;
  const info = { title: meta("parley-title") ?? undefined, order_id: meta("parley-order") ?? undefined, photo_url: meta("parley-photo") ?? undefined, counterpart };
  const mount = h("div", { class: "parley-landing parley-page-card" });
  host.append(mount);
  try {
    return await ParleyWidget.start(mount, {
      url,
      token,
      room,
      info,
      locale: meta("parley-locale") ?? undefined,
      appUrl: meta("parley-app") ?? undefined,
      fromLink: true,
      clientOptions: options.clientOptions,
      onStarted: () => placeholder?.remove(), // also after "Try again"
    });
  } catch (err) {
    placeholder?.querySelector('[role="status"]')?.remove();
    throw err;
  }
}
