/** The private conversation of an order (R9, R12): typing, read receipts, status messages. */

import { View, h, messageText, nextId, safeUrl } from "./dom.js";
import { formatTime } from "./strings.js";

const TYPING_SEND_EVERY = 3000; // ms between two `typing` a member sends while writing
const TYPING_SHOWN_FOR = 6000; // ms a typing indicator stays without a new event

export class ConversationView extends View {
  constructor(widget, room, info = {}) {
    super(widget);
    this.room = room;
    this.info = info;
    this.messages = new Map();
    this.reads = {}; // user id -> up_to
    this.online = {}; // user id -> bool
    this.typingTimer = null;
    this.lastTypingSent = 0;
    this.readSent = 0;
    this.more = false;
    this.closed = false;
    const me = widget.client.user.id;
    const titleId = nextId("parley-conversation-title");
    this.heading = this.label(h("h2", { id: titleId, tabindex: "-1" }), (t) =>
      info.title ? t.conversationAbout(info.title) : info.order_id ? `${t.conversation} · ${t.orderNumber(info.order_id)}` : t.conversation,
    );
    this.who = h("p", { class: "parley-counterpart" });
    this.list = h("ol", { class: "parley-messages", role: "log", "data-testid": "messages" });
    this.label(this.list, (t) => t.conversation, "aria-label");
    this.olderButton = this.label(h("button", { type: "button", class: "parley-link-button", hidden: true, onclick: () => this.loadOlder() }), (t) => t.olderComments);
    this.typingLine = h("p", { class: "parley-typing", "aria-live": "polite", "data-testid": "typing" });
    const inputId = nextId("parley-message");
    this.textarea = h("textarea", { id: inputId, rows: "2", class: "parley-input parley-compose", maxlength: "4000" });
    this.label(this.textarea, (t) => t.messagePlaceholder, "placeholder");
    this.textarea.addEventListener("input", () => this.sendTyping());
    this.textarea.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.form.requestSubmit();
      }
    });
    this.sendButton = this.label(h("button", { type: "submit", class: "parley-button parley-primary" }), (t) => t.send);
    this.error = h("p", { class: "parley-error", role: "alert", hidden: true });
    this.notice = h("p", { class: "parley-notice", role: "status" });
    this.endedNote = this.label(h("p", { class: "parley-note", hidden: true }), (t) => t.readOnly);
    this.form = h(
      "form",
      { class: "parley-compose-form", onsubmit: (e) => this.send(e) },
      this.label(h("label", { for: inputId, class: "parley-label" }), (t) => t.yourMessage),
      h("div", { class: "parley-compose-row" }, this.textarea, this.sendButton),
    );
    this.el = h(
      "section",
      { class: "parley-view parley-conversation", "aria-labelledby": titleId, "data-room": room },
      widget.backButton(this),
      safeUrl(info.photo_url, { images: true }) ? h("img", { class: "parley-conversation-photo", src: safeUrl(info.photo_url, { images: true }), alt: "" }) : null,
      this.heading,
      this.who,
      // R12: said in every order conversation, above the messages.
      this.label(h("p", { class: "parley-disclaimer", role: "note", "data-testid": "disclaimer" }), (t) => t.disclaimer),
      this.olderButton,
      this.list,
      this.typingLine,
      this.endedNote,
      this.form,
      this.notice,
      this.error,
    );
    this.listen("message", (e) => {
      if (e.room !== this.room) return;
      this.add(e);
      if (e.author && e.author.id !== me && e.author.id === this.typingUser) this.hideTyping();
      this.markRead();
    });
    this.listen("message_edited", (e) => e.room === this.room && this.patch(e.target, { text: e.text, mentions: e.mentions, masked_kinds: e.masked_kinds, edited_ts: e.ts }));
    this.listen("message_deleted", (e) => e.room === this.room && this.patch(e.target, { text: "", deleted: true }));
    this.listen("message_removed", (e) => e.room === this.room && this.patch(e.target, { text: "", deleted: true, removed: true }));
    this.listen("read", (e) => {
      if (e.room !== this.room) return;
      this.reads[e.user_id] = Math.max(this.reads[e.user_id] ?? 0, e.up_to);
      this.renderSeen();
    });
    this.listen("typing", (e) => e.room === this.room && e.user_id !== me && this.showTyping(e));
    this.listen("presence", (e) => {
      if (e.room !== this.room) return;
      this.online[e.user_id] = e.online;
      this.renderWho();
    });
    this.listen("reload", (e) => e.room === this.room && this.load());
    this.listen("room_closed", (e) => e.room === this.room && this.setEnded(true));
    this.listen("room_reopened", (e) => e.room === this.room && this.setEnded(false));
    this.onVisible = () => document.visibilityState === "visible" && this.markRead();
    document.addEventListener("visibilitychange", this.onVisible);
  }

  get counterpartId() {
    if (this.info.counterpart?.id) return this.info.counterpart.id;
    const me = this.client.user.id;
    return Object.keys(this.online).find((id) => id !== me) ?? Object.keys(this.reads).find((id) => id !== me) ?? null;
  }

  async start() {
    const joined = await this.client.subscribe(this.room);
    this.reads = { ...(joined.read ?? {}) };
    this.online = { ...(joined.online ?? {}) };
    await this.load();
  }

  destroy() {
    super.destroy();
    document.removeEventListener("visibilitychange", this.onVisible);
    this.client.unsubscribe(this.room).catch(() => {});
  }

  focus() {
    this.heading.focus();
  }

  async load() {
    const page = await this.client.history(this.room, { limit: 50 });
    this.messages.clear();
    for (const m of page.messages) this.remember(m);
    this.more = page.more;
    this.refresh();
    this.markRead();
  }

  async loadOlder() {
    const oldest = Math.min(...this.messages.keys());
    const page = await this.client.history(this.room, { before: oldest, limit: 50 });
    for (const m of page.messages) this.remember(m);
    this.more = page.more;
    this.refresh();
  }

  remember(m) {
    this.messages.set(m.seq, m);
    if (m.author) this.w.names.set(m.author.id, m.author.name);
  }

  refresh() {
    const sorted = [...this.messages.values()].sort((a, b) => a.seq - b.seq);
    this.list.replaceChildren(...sorted.map((m) => this.item(m)));
    this.olderButton.hidden = !this.more;
    this.renderSeen();
    this.renderWho();
  }

  renderWho() {
    const id = this.counterpartId;
    if (!id) {
      this.who.replaceChildren();
      return;
    }
    const name = this.info.counterpart?.name ?? this.w.names.get(id) ?? this.t.someone;
    const online = this.online[id] === true;
    this.who.replaceChildren(
      h("span", { class: "parley-author", text: `@${name}` }),
      " ",
      h("span", { class: `parley-presence${online ? " parley-online" : ""}`, "data-testid": "presence", text: online ? this.t.online : this.t.offline }),
    );
  }

  item(m) {
    const t = this.t;
    if (m.kind === "system") {
      const li = h("li", { class: "parley-system", "data-seq": String(m.seq), "data-type": m.data?.type ?? "" }, h("p", { class: "parley-text", text: this.w.systemText(m) }));
      const url = safeUrl(m.data?.tracking_urls?.[this.w.locale] ?? m.data?.tracking_urls?.en);
      if (url) li.append(h("a", { href: url, target: "_blank", rel: "noopener noreferrer", class: "parley-track", text: t.trackParcel }));
      return li;
    }
    const mine = m.author?.id === this.client.user.id;
    return h(
      "li",
      { class: `parley-message${mine ? " parley-mine" : ""}`, "data-seq": String(m.seq) },
      h(
        "p",
        { class: "parley-meta" },
        h("span", { class: "parley-author", text: `@${m.author?.name ?? "?"}` }),
        h("time", { class: "parley-time", datetime: new Date(m.ts).toISOString(), text: formatTime(m.ts, this.w.intl) }),
        m.edited_ts ? h("span", { class: "parley-edited", text: t.edited }) : null,
      ),
      m.deleted ? h("p", { class: "parley-text", text: m.removed ? t.removed : t.deleted }) : messageText(m),
      m.masked_kinds?.length && !m.deleted ? h("p", { class: "parley-masked", text: t.maskedBadge }) : null,
    );
  }

  add(m) {
    if (this.messages.has(m.seq)) return;
    this.remember(m);
    const after = [...this.list.children].find((li) => Number(li.dataset.seq) > m.seq);
    this.list.insertBefore(this.item(m), after ?? null);
    this.renderSeen();
  }

  patch(seq, fields) {
    const m = this.messages.get(seq);
    if (!m) return;
    Object.assign(m, fields);
    this.list.querySelector(`[data-seq="${seq}"]`)?.replaceWith(this.item(m));
    this.renderSeen();
  }

  /** "Seen" under the newest of my messages the other party has read. */
  renderSeen() {
    for (const old of this.list.querySelectorAll(".parley-seen")) old.remove();
    const other = this.counterpartId;
    const upTo = other ? this.reads[other] ?? 0 : 0;
    const me = this.client.user.id;
    const mine = [...this.messages.values()].filter((m) => m.author?.id === me && m.seq <= upTo);
    if (!mine.length) return;
    const last = mine.reduce((a, b) => (a.seq > b.seq ? a : b));
    this.list.querySelector(`[data-seq="${last.seq}"]`)?.append(h("p", { class: "parley-seen", "data-testid": "seen", text: this.t.seen }));
  }

  /** Tell the hub how far this member has read, when the conversation is in front of them. */
  async markRead() {
    if (document.visibilityState !== "visible" || !this.messages.size) return;
    const newest = Math.max(...this.messages.keys());
    const me = this.client.user.id;
    if (newest <= Math.max(this.readSent, this.reads[me] ?? 0)) return;
    this.readSent = newest;
    try {
      const result = await this.client.read(this.room, newest);
      this.reads[me] = Math.max(this.reads[me] ?? 0, result.up_to);
    } catch {
      this.readSent = 0; // try again with the next message
    }
  }

  sendTyping() {
    const now = Date.now();
    if (!this.textarea.value.trim() || now - this.lastTypingSent < TYPING_SEND_EVERY) return;
    this.lastTypingSent = now;
    this.client.typing(this.room).catch(() => {});
  }

  showTyping(event) {
    this.typingUser = event.user_id;
    this.w.names.set(event.user_id, event.name);
    this.typingLine.textContent = this.t.typing(event.name);
    if (this.typingTimer) clearTimeout(this.typingTimer);
    this.typingTimer = this.later(() => this.hideTyping(), TYPING_SHOWN_FOR);
  }

  hideTyping() {
    this.typingUser = null;
    this.typingLine.textContent = "";
  }

  setEnded(ended) {
    this.closed = ended;
    this.endedNote.hidden = !ended;
    this.textarea.disabled = ended;
    this.sendButton.disabled = ended;
  }

  async send(event) {
    event.preventDefault();
    const text = this.textarea.value;
    if (!text.trim()) return;
    this.error.hidden = true;
    this.notice.textContent = "";
    try {
      const reply = await this.client.post(this.room, text);
      this.textarea.value = "";
      this.lastTypingSent = 0;
      if (reply.masked?.length) this.notice.textContent = this.t.maskedNotice([...new Set(reply.masked.map((m) => m.kind))]);
    } catch (err) {
      if (err.code === "read_only") this.setEnded(true);
      this.showError(this.error, err);
    }
  }
}
