/** The notification bell: the unread count, and the member's notifications in a panel. */

import { View, h, icon, nextId } from "./dom.js";
import { formatAgo } from "./strings.js";

export class Bell extends View {
  constructor(widget) {
    super(widget);
    this.items = [];
    this.unread = 0;
    this.loaded = false;
    const panelId = nextId("parley-notifications");
    this.count = h("span", { class: "parley-badge", "aria-hidden": "true", "data-testid": "bell-count" });
    this.button = h(
      "button",
      {
        type: "button",
        class: "parley-bell",
        "aria-haspopup": "true",
        "aria-expanded": "false",
        "aria-controls": panelId,
        onclick: () => this.toggle(),
      },
      icon("bell"),
      this.count,
    );
    this.list = h("ul", { class: "parley-notification-list" });
    this.heading = this.label(h("h2", { class: "parley-panel-title" }), (t) => t.notifications);
    this.closeButton = this.label(
      h("button", { type: "button", class: "parley-link-button", onclick: () => this.toggle(false) }),
      (t) => t.close,
    );
    this.panel = h(
      "div",
      { id: panelId, class: "parley-panel", role: "region", hidden: true, onkeydown: (e) => this.onKey(e) },
      h("div", { class: "parley-panel-head" }, this.heading, this.closeButton),
      this.list,
    );
    this.label(this.panel, (t) => t.notifications, "aria-label");
    this.el = h("div", { class: "parley-bell-wrap" }, this.button, this.panel);
    this.listen("notification", (event) => {
      this.items.unshift({ seq: event.seq, ts: event.ts, read: false, notification: event.notification });
      this.setUnread(this.unread + 1);
      if (!this.panel.hidden) this.refresh();
    });
    this.listen("notifications_read", (event) => {
      if (typeof event.unread === "number") this.setUnread(event.unread);
      for (const item of this.items) if (item.seq <= event.up_to) item.read = true;
      if (!this.panel.hidden) this.refresh();
    });
    // A notification follows the message it quotes (R2): withdrawn when the message is
    // deleted or no longer mentions the member, its excerpt rewritten when it is edited.
    this.listen("message_deleted", (event) => {
      if (event.room !== this.client.inbox) return;
      const gone = this.items.find((item) => item.seq === event.target);
      if (!gone) {
        this.load().catch(() => {}); // older than the page shown: ask the hub for the count
        return;
      }
      this.items = this.items.filter((item) => item !== gone);
      if (!gone.read) this.setUnread(Math.max(0, this.unread - 1));
      if (!this.panel.hidden) this.refresh();
    });
    this.listen("message_edited", (event) => {
      if (event.room !== this.client.inbox || !event.notification) return;
      const item = this.items.find((i) => i.seq === event.target);
      if (item) item.notification = event.notification;
      if (!this.panel.hidden) this.refresh();
    });
    this.listen("reload", (event) => {
      if (event.room === this.client.inbox) this.load();
    });
    this.setUnread(0);
  }

  async load() {
    const page = await this.client.notifications({ limit: 20 });
    this.items = page.notifications;
    this.setUnread(page.unread);
    this.loaded = true;
    this.refresh();
  }

  setUnread(n) {
    this.unread = Math.max(0, n);
    this.count.textContent = this.unread > 99 ? "99+" : String(this.unread);
    this.count.hidden = this.unread === 0;
    this.button.dataset.unread = String(this.unread);
    this.button.setAttribute("aria-label", this.t.bell(this.unread));
  }

  relabel() {
    super.relabel();
    this.setUnread(this.unread);
  }

  async toggle(open = this.panel.hidden) {
    this.panel.hidden = !open;
    this.button.setAttribute("aria-expanded", String(open));
    if (!open) {
      this.button.focus();
      return;
    }
    this.refresh();
    this.closeButton.focus();
    const newest = Math.max(0, ...this.items.map((i) => i.seq));
    if (this.unread > 0 && newest > 0) {
      try {
        const result = await this.client.notificationsRead(newest);
        this.setUnread(result.unread);
      } catch {
        /* stays unread; the next opening tries again */
      }
    }
  }

  onKey(event) {
    if (event.key === "Escape") {
      event.preventDefault();
      this.toggle(false);
    }
  }

  refresh() {
    const t = this.t;
    if (!this.items.length) {
      this.list.replaceChildren(h("li", { class: "parley-empty", text: t.noNotifications }));
      return;
    }
    this.list.replaceChildren(
      ...this.items.map((item) =>
        h(
          "li",
          { class: `parley-notification${item.read ? "" : " parley-unread"}`, "data-kind": item.notification.kind },
          h(
            "button",
            {
              type: "button",
              class: "parley-notification-button",
              onclick: () => {
                this.toggle(false);
                this.w.openNotification(item.notification);
              },
            },
            h("span", { class: "parley-notification-text", text: this.w.notificationText(item.notification) }),
            h("time", { class: "parley-time", datetime: new Date(item.ts).toISOString(), text: formatAgo(item.ts, this.w.intl) }),
          ),
        ),
      ),
    );
  }
}
