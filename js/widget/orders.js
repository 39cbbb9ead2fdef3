/** "My orders" (R10): Sales and Purchases, a chat icon over each item photo. */

import { View, h, icon, nextId, safeUrl } from "./dom.js";

export class OrdersView extends View {
  constructor(widget, role = "purchases") {
    super(widget);
    this.role = role;
    this.items = [];
    this.heading = this.label(h("h2", { tabindex: "-1" }), (t) => t.myOrders);
    const panelId = nextId("parley-orders-panel");
    this.tabs = ["sales", "purchases"].map((r) =>
      this.label(
        h("button", {
          type: "button",
          role: "tab",
          id: `${panelId}-${r}`,
          class: "parley-tab",
          "data-role": r,
          "aria-controls": panelId,
          onclick: () => this.select(r),
          onkeydown: (e) => this.onTabKey(e),
        }),
        (t) => t[r],
      ),
    );
    this.list = h("ul", { class: "parley-orders", "data-testid": "orders" });
    this.panel = h("div", { id: panelId, role: "tabpanel", class: "parley-tabpanel" }, this.list);
    const tablist = h("div", { role: "tablist", class: "parley-tabs" }, this.tabs);
    this.label(tablist, (t) => t.myOrders, "aria-label");
    this.el = h("section", { class: "parley-view parley-orders-view" }, widget.backButton(this), this.heading, tablist, this.panel);
    this.listen("notification", (e) => {
      if (String(e.notification?.kind).startsWith("order_")) this.load();
    });
    this.markTabs();
  }

  async start() {
    await this.load();
  }

  focus() {
    this.heading.focus();
  }

  markTabs() {
    for (const tab of this.tabs) {
      const selected = tab.dataset.role === this.role;
      tab.setAttribute("aria-selected", String(selected));
      tab.tabIndex = selected ? 0 : -1;
      if (selected) this.panel?.setAttribute("aria-labelledby", tab.id);
    }
  }

  async select(role) {
    this.role = role;
    this.markTabs();
    await this.load();
  }

  onTabKey(event) {
    const i = this.tabs.indexOf(event.currentTarget);
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (!step) return;
    event.preventDefault();
    const tab = this.tabs[(i + step + this.tabs.length) % this.tabs.length];
    tab.focus();
    this.select(tab.dataset.role);
  }

  async load() {
    const role = this.role;
    const page = await this.client.conversations(role, { limit: 20 });
    if (role !== this.role) return;
    this.items = page.conversations;
    for (const c of this.items) if (c.counterpart.name) this.w.names.set(c.counterpart.id, c.counterpart.name);
    this.refresh();
  }

  refresh() {
    const t = this.t;
    if (!this.items.length) {
      this.list.replaceChildren(h("li", { class: "parley-empty", text: t.noOrders }));
      return;
    }
    this.list.replaceChildren(
      ...this.items.map((c) => {
        const title = c.listing?.title ?? t.orderNumber(c.order_id);
        const name = c.counterpart.name ?? t.someone;
        return h(
          "li",
          { class: "parley-order", "data-order": c.order_id },
          h(
            "div",
            { class: "parley-order-photo" },
            h("img", { src: safeUrl(c.listing?.photo_url, { images: true }), alt: "" }),
            h(
              "button",
              {
                type: "button",
                class: "parley-chat-button",
                "data-action": "open-chat",
                "aria-label": t.openChat(name, title) + (c.unread ? ` (${t.unreadCount(c.unread)})` : ""),
                onclick: () => this.w.openConversation(c.room, { title, counterpart: c.counterpart, order_id: c.order_id, role: this.role }),
              },
              icon("chat"),
              c.unread ? h("span", { class: "parley-badge", "aria-hidden": "true", text: c.unread > 999 ? "999+" : String(c.unread) }) : null,
            ),
          ),
          h(
            "div",
            { class: "parley-order-info" },
            h("p", { class: "parley-order-title", text: title }),
            h("p", { class: "parley-order-who", text: this.role === "sales" ? t.counterpartBuyer(name) : t.counterpartSeller(name) }),
            h("p", { class: "parley-order-status", text: t.status[c.status] ?? c.status }),
            c.last_message
              ? h("p", { class: "parley-order-last", text: c.last_message.kind === "system" ? c.last_message.excerpt : t.lastBy(c.last_message.author?.name ?? "?", c.last_message.excerpt) })
              : null,
          ),
        );
      }),
    );
  }
}
