/**
 * A listing (R1, R4-R8): its photo and price, "Buy" and "Make an offer", the seller's
 * switch, likers and offers to likers, each negotiation, and the public comments.
 */

import { View, h, messageText, nextId, safeUrl } from "./dom.js";
import { MentionBox } from "./mentions.js";
import { formatAgo, formatTime, maxLikersOffer, parseMoney } from "./strings.js";

const HISTORY_PAGE = 30; // comments read at once

export class ListingView extends View {
  constructor(widget, listing) {
    super(widget);
    this.listing = listing;
    this.room = `listing:${listing.id}`;
    this.messages = new Map(); // seq -> message
    this.negotiations = new Map(); // id -> negotiation
    this.likers = null;
    this.more = false;
    this.isSeller = widget.client.user.id === listing.seller_id;
    const titleId = nextId("parley-listing-title");

    this.heading = h("h2", { id: titleId, class: "parley-listing-title", tabindex: "-1", text: listing.title });
    this.watchers = h("p", { class: "parley-watchers", hidden: true });
    const head = h(
      "div",
      { class: "parley-listing-head" },
      h("img", { class: "parley-listing-photo", src: safeUrl(listing.photo_url, { images: true }), alt: listing.title }),
      h(
        "div",
        { class: "parley-listing-facts" },
        this.heading,
        h("p", { class: "parley-price", "data-testid": "price", text: widget.money(listing.price.amount, listing.price.currency) }),
        this.label(h("p", { class: "parley-seller" }), (t) => t.by(widget.nameOf(listing.seller_id))),
        this.watchers,
        this.buildActions(),
      ),
    );
    this.el = h(
      "article",
      { class: "parley-view parley-listing", "aria-labelledby": titleId, "data-listing": listing.id },
      widget.backButton(this),
      head,
      this.isSeller ? this.buildSellerTools() : null,
      this.buildNegotiations(),
      this.buildComments(),
    );
    this.listen("message", (e) => e.room === this.room && this.addMessage(e));
    this.listen("message_edited", (e) => e.room === this.room && this.editMessage(e));
    this.listen("message_deleted", (e) => e.room === this.room && this.patchMessage(e.target, { text: "", deleted: true }));
    this.listen("message_removed", (e) => e.room === this.room && this.patchMessage(e.target, { text: "", deleted: true, removed: true }));
    this.listen("message_held", (e) => e.room === this.room && this.patchMessage(e.target, { text: "", held: true }));
    this.listen("message_released", (e) => e.room === this.room && this.reloadMessage(e.target));
    this.listen("reload", (e) => e.room === this.room && this.loadComments());
    this.listen("offer", (e) => {
      if (e.offer?.listing === this.listing.id) {
        this.negotiations.set(e.offer.id, e.offer);
        this.renderNegotiations();
      }
    });
  }

  async start() {
    const joined = await this.client.subscribe(this.room);
    if (typeof joined.watchers === "number") {
      this.label(this.watchers, (t) => t.watching(joined.watchers));
      this.watchers.hidden = false;
    }
    await Promise.all([this.loadComments(), this.loadNegotiations()]);
  }

  destroy() {
    super.destroy();
    this.client.unsubscribe(this.room).catch(() => {});
  }

  focus() {
    this.heading.focus();
  }

  // Buy and Make an offer (R5).

  buildActions() {
    const listing = this.listing;
    this.buyNote = this.label(h("p", { class: "parley-note", role: "status", hidden: true }), (t) => t.buyNote);
    const buy = this.label(
      h("button", {
        type: "button",
        class: "parley-button parley-primary",
        "data-action": "buy",
        onclick: () => (this.buyNote.hidden = false),
      }),
      (t) => t.buy,
    );
    this.offerButton = this.label(
      h("button", {
        type: "button",
        class: "parley-button",
        "data-action": "make-offer",
        "aria-expanded": "false",
        onclick: () => this.toggleOfferForm(),
      }),
      (t) => t.makeOffer,
    );
    this.offerButton.hidden = this.isSeller || !listing.offers_enabled;
    const inputId = nextId("parley-offer-amount");
    this.offerInput = h("input", { id: inputId, type: "text", inputmode: "decimal", autocomplete: "off", required: true, class: "parley-input parley-amount" });
    this.offerError = h("p", { class: "parley-error", role: "alert", hidden: true });
    this.offerForm = h(
      "form",
      { class: "parley-offer-form", hidden: true, onsubmit: (e) => this.sendOffer(e) },
      this.label(h("label", { for: inputId }), (t) => t.offerAmount),
      this.offerInput,
      this.label(h("button", { type: "submit", class: "parley-button parley-primary" }), (t) => t.sendOffer),
      this.label(h("button", { type: "button", class: "parley-button", onclick: () => this.toggleOfferForm(false) }), (t) => t.cancel),
      this.offerError,
    );
    return h("div", { class: "parley-actions" }, h("div", { class: "parley-buttons" }, buy, this.offerButton), this.buyNote, this.offerForm);
  }

  toggleOfferForm(open = this.offerForm.hidden) {
    this.offerForm.hidden = !open;
    this.offerButton.setAttribute("aria-expanded", String(open));
    this.offerError.hidden = true;
    if (open) this.offerInput.focus();
    else this.offerButton.focus();
  }

  async sendOffer(event) {
    event.preventDefault();
    const { amount: price, currency } = this.listing.price;
    const amount = parseMoney(this.offerInput.value);
    this.offerError.hidden = true;
    if (amount === null) return this.showError(this.offerError, { local: this.t.badAmount });
    if (amount >= price) {
      return this.showError(this.offerError, { local: this.t.offerBelowPrice(this.w.money(price, currency)) });
    }
    try {
      const offer = await this.client.offerMake(this.listing.id, amount);
      this.negotiations.set(offer.id, offer);
      this.offerInput.value = "";
      this.offerForm.hidden = true;
      this.offerButton.setAttribute("aria-expanded", "false");
      this.renderNegotiations(); // hides "Make an offer" while this one is open
      this.focusOffer(offer.id);
    } catch (err) {
      if (err.code === "offers_disabled") {
        this.listing.offers_enabled = false; // the seller switched them off meanwhile
        this.renderNegotiations();
        this.offerForm.hidden = false;
      }
      this.showError(this.offerError, err);
    }
  }

  // The seller: the switch, the likers, offers to likers (R5, R6).

  buildSellerTools() {
    const switchId = nextId("parley-offers-switch");
    this.switch = h("input", {
      id: switchId,
      type: "checkbox",
      role: "switch",
      class: "parley-switch",
      "data-testid": "offers-switch",
      onchange: () => this.setOffers(this.switch.checked),
    });
    this.switch.checked = !!this.listing.offers_enabled;
    this.switchNote = h("p", { class: "parley-note" });
    this.switchError = h("p", { class: "parley-error", role: "alert", hidden: true });
    this.likersList = h("ul", { class: "parley-likers" });
    this.likersButton = this.label(
      h("button", { type: "button", class: "parley-button", "aria-expanded": "false", "data-action": "likers", onclick: () => this.toggleLikers() }),
      (t) => t.showLikers,
    );
    this.likersBox = h(
      "div",
      { class: "parley-likers-box", hidden: true },
      this.label(h("h4"), (t) => t.likers),
      this.likersList,
      this.label(
        h("button", { type: "button", class: "parley-button", "data-action": "global-offer", onclick: () => this.openLikersForm(null) }),
        (t) => t.globalOffer,
      ),
    );
    // One form for an offer to one liker or to all: the 10 % rule is explained before sending.
    const inputId = nextId("parley-likers-amount");
    this.likersTarget = h("p", { class: "parley-form-title" });
    this.likersRule = h("p", { class: "parley-rule", "data-testid": "ten-percent-rule" });
    this.likersInput = h("input", { id: inputId, type: "text", inputmode: "decimal", autocomplete: "off", required: true, class: "parley-input parley-amount" });
    this.likersError = h("p", { class: "parley-error", role: "alert", hidden: true });
    this.likersResult = h("p", { class: "parley-note", role: "status" });
    this.likersForm = h(
      "form",
      { class: "parley-likers-form", hidden: true, onsubmit: (e) => this.sendLikersOffer(e) },
      this.likersTarget,
      this.likersRule,
      this.label(h("label", { for: inputId }), (t) => t.offerAmount),
      this.likersInput,
      this.label(h("button", { type: "submit", class: "parley-button parley-primary" }), (t) => t.sendOffer),
      this.label(h("button", { type: "button", class: "parley-button", onclick: () => this.closeLikersForm() }), (t) => t.cancel),
      this.likersError,
    );
    this.renderSwitchNote();
    return h(
      "section",
      { class: "parley-seller-tools" },
      this.label(h("h3"), (t) => t.sellerTools),
      h("div", { class: "parley-switch-row" }, this.switch, this.label(h("label", { for: switchId }), (t) => t.offersSwitch)),
      this.switchNote,
      this.switchError,
      this.likersButton,
      this.likersBox,
      this.likersForm,
      this.likersResult,
    );
  }

  renderSwitchNote() {
    if (this.switchNote) this.switchNote.textContent = this.switch.checked ? this.t.offersOnNote : this.t.offersOffNote;
  }

  async setOffers(enabled) {
    this.switchError.hidden = true;
    try {
      const result = await this.client.offersEnable(this.listing.id, enabled);
      this.listing.offers_enabled = result.offers_enabled;
      this.switch.checked = result.offers_enabled;
    } catch (err) {
      this.switch.checked = !enabled;
      this.showError(this.switchError, err);
    }
    this.renderSwitchNote();
  }

  async toggleLikers(open = this.likersBox.hidden) {
    this.likersBox.hidden = !open;
    this.likersButton.setAttribute("aria-expanded", String(open));
    if (open) await this.loadLikers();
  }

  async loadLikers() {
    try {
      const page = await this.client.likers(this.listing.id, { limit: 50 });
      this.likers = page.likers;
      for (const liker of page.likers) this.w.names.set(liker.user_id, liker.name);
    } catch (err) {
      this.likers = [];
      this.showError(this.switchError, err);
    }
    this.renderLikers();
  }

  renderLikers() {
    if (!this.likersList || this.likers === null) return;
    if (!this.likers.length) {
      this.likersList.replaceChildren(h("li", { class: "parley-empty", text: this.t.noLikers }));
      return;
    }
    this.likersList.replaceChildren(
      ...this.likers.map((liker) =>
        h(
          "li",
          { class: "parley-liker", "data-user": liker.user_id },
          h("span", { class: "parley-liker-name", text: `@${liker.name}` }),
          h("span", { class: "parley-time", text: this.t.likedAt(formatAgo(liker.liked_at, this.w.intl)) }),
          liker.open_offer ? h("span", { class: "parley-tag", text: this.t.hasOpenOffer }) : null,
          h("button", {
            type: "button",
            class: "parley-button",
            "data-action": "send-offer",
            "aria-label": this.t.sendOfferTo(liker.name),
            text: this.t.sendOfferShort,
            disabled: !!liker.open_offer,
            onclick: () => this.openLikersForm(liker),
          }),
        ),
      ),
    );
  }

  openLikersForm(liker) {
    const { amount, currency } = this.listing.price;
    this.likersTo = liker;
    this.likersTarget.textContent = liker ? this.t.offerToOne(liker.name) : this.t.globalOfferTo;
    this.likersRule.textContent = this.t.tenPercentRule(this.w.money(maxLikersOffer(amount), currency));
    this.likersError.hidden = true;
    this.likersResult.textContent = "";
    this.likersForm.hidden = false;
    this.likersInput.focus();
  }

  closeLikersForm() {
    this.likersForm.hidden = true;
    this.likersButton.focus();
  }

  async sendLikersOffer(event) {
    event.preventDefault();
    const { amount: price, currency } = this.listing.price;
    const amount = parseMoney(this.likersInput.value);
    this.likersError.hidden = true;
    if (amount === null) return this.showError(this.likersError, { local: this.t.badAmount });
    if (10 * amount > 9 * price) {
      // R6, checked before sending; the hub checks it again.
      return this.showError(this.likersError, { local: this.t.tenPercentBroken(this.w.money(maxLikersOffer(price), currency)) });
    }
    try {
      const result = await this.client.offerToLikers(this.listing.id, amount, this.likersTo ? [this.likersTo.user_id] : "all");
      for (const sent of result.sent) this.negotiations.set(sent.offer.id, sent.offer);
      const lines = [this.t.sentTo(result.sent.length)];
      for (const s of result.skipped) lines.push(this.t.skipped(this.w.nameOf(s.user_id), s.reason));
      this.likersResult.textContent = lines.join(" ");
      this.likersForm.hidden = true;
      this.likersInput.value = "";
      this.renderNegotiations();
      await this.loadLikers();
      this.likersButton.focus();
    } catch (err) {
      this.showError(this.likersError, err);
    }
  }

  // Negotiations (R5-R7): prices, whose turn, countdown, answers.

  buildNegotiations() {
    this.negotiationList = h("ul", { class: "parley-negotiations", "data-testid": "negotiations" });
    this.negotiationSection = h(
      "section",
      { class: "parley-negotiation-section", hidden: true },
      this.label(h("h3"), (t) => t.negotiations),
      this.negotiationList,
    );
    return this.negotiationSection;
  }

  async loadNegotiations() {
    try {
      for (const offer of await this.client.offers({ listing: this.listing.id })) this.negotiations.set(offer.id, offer);
    } catch {
      /* shown empty; live offer events still come */
    }
    this.renderNegotiations();
  }

  renderNegotiations() {
    const offers = [...this.negotiations.values()].sort((a, b) => b.updated_at - a.updated_at);
    this.negotiationSection.hidden = offers.length === 0;
    // One open negotiation per buyer and listing: answer it rather than make another.
    const open = offers.some((o) => o.state === "open");
    this.offerButton.hidden = this.isSeller || !this.listing.offers_enabled || open;
    if (open && !this.offerForm.hidden) this.offerForm.hidden = true;
    this.negotiationList.replaceChildren(...offers.map((offer) => this.negotiationCard(offer)));
  }

  /** Keyboard and screen-reader users land on the negotiation's new state. */
  focusOffer(id) {
    this.negotiationList.querySelector(`[data-offer="${CSS.escape(id)}"] .parley-offer-state`)?.focus();
  }

  negotiationCard(offer) {
    const t = this.t;
    const money = (a) => this.w.money(a, offer.currency);
    const me = this.client.user.id;
    const other = me === offer.seller ? offer.buyer : offer.seller;
    const error = h("p", { class: "parley-error", role: "alert", hidden: true });
    const respond = async (action, amount = null) => {
      error.hidden = true;
      try {
        const updated = await this.client.offerRespond(offer.id, action, amount);
        this.negotiations.set(updated.id, updated);
        this.renderNegotiations();
        this.focusOffer(updated.id);
      } catch (err) {
        this.showError(error, err);
      }
    };
    const counterId = nextId("parley-counter");
    const counterInput = h("input", { id: counterId, type: "text", inputmode: "decimal", autocomplete: "off", required: true, class: "parley-input parley-amount" });
    const counterForm = h(
      "form",
      {
        class: "parley-counter-form",
        hidden: true,
        onsubmit: (e) => {
          e.preventDefault();
          const amount = parseMoney(counterInput.value);
          if (amount === null) return this.showError(error, { local: t.badAmount });
          respond("counter", amount);
        },
      },
      h("label", { for: counterId, text: t.counterAmount }),
      counterInput,
      h("button", { type: "submit", class: "parley-button parley-primary", text: t.sendCounter }),
    );
    const open = offer.state === "open";
    let actions = null;
    if (open && offer.your_turn) {
      actions = h(
        "div",
        { class: "parley-buttons" },
        h("button", { type: "button", class: "parley-button parley-primary", "data-action": "accept", text: t.accept, onclick: () => respond("accept") }),
        h("button", { type: "button", class: "parley-button", "data-action": "decline", text: t.decline, onclick: () => respond("decline") }),
        h("button", {
          type: "button",
          class: "parley-button",
          "data-action": "counter",
          text: t.counter,
          onclick: () => {
            counterForm.hidden = false;
            counterInput.focus();
          },
        }),
      );
    } else if (open) {
      actions = h(
        "div",
        { class: "parley-buttons" },
        h("button", { type: "button", class: "parley-button", "data-action": "withdraw", text: t.withdraw, onclick: () => respond("withdraw") }),
      );
    }
    const whose = open ? (offer.your_turn ? t.yourTurn : t.theirTurn[offer.turn]) : "";
    return h(
      "li",
      { class: `parley-offer parley-offer-${offer.state}`, "data-offer": offer.id, "data-state": offer.state, "data-your-turn": String(!!offer.your_turn) },
      h("p", { class: "parley-offer-who", text: t.negotiationWith(this.w.nameOf(other)) }),
      h("p", { class: "parley-offer-item", text: t.itemPrice(money(offer.item_price)) }),
      h(
        "ol",
        { class: "parley-offer-history" },
        offer.history.map((step) => h("li", { text: t.priceStep(step.by, money(step.amount)) })),
      ),
      h("p", { class: "parley-offer-price", text: t.currentPrice(money(offer.price), offer.discount_percent) }),
      h("p", { class: "parley-offer-state", tabindex: "-1", "data-testid": "offer-state" }, h("strong", { text: t.state[offer.state] ?? offer.state }), whose ? ` · ${whose}` : ""),
      open && offer.expires_at
        ? h("p", { class: "parley-countdown", "data-expires": String(offer.expires_at), text: this.w.countdownText(offer.expires_at) })
        : null,
      offer.state === "accepted" ? h("p", { class: "parley-agreed", text: t.agreed(money(offer.price)) }) : null,
      actions,
      counterForm,
      error,
    );
  }

  // Comments (R1, R4, R8).

  buildComments() {
    const inputId = nextId("parley-comment");
    const helpId = nextId("parley-comment-help");
    this.commentList = h("ol", { class: "parley-comments", role: "log", "data-testid": "comments" });
    this.label(this.commentList, (t) => t.comments, "aria-label");
    this.olderButton = this.label(
      h("button", { type: "button", class: "parley-link-button", hidden: true, onclick: () => this.loadOlder() }),
      (t) => t.olderComments,
    );
    this.emptyNote = this.label(h("p", { class: "parley-empty", hidden: true }), (t) => t.noComments);
    this.textarea = h("textarea", { id: inputId, rows: "2", class: "parley-input parley-compose", "aria-describedby": helpId, maxlength: "4000" });
    this.label(this.textarea, (t) => t.commentPlaceholder, "placeholder");
    // First: while suggestions show, Enter picks one instead of posting.
    this.mentions = new MentionBox(this, this.textarea, () => this.namesSeen());
    this.textarea.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.form.requestSubmit();
      }
    });
    this.notice = h("p", { class: "parley-notice", role: "status", "data-testid": "comment-notice" });
    this.commentError = h("p", { class: "parley-error", role: "alert", hidden: true });
    this.form = h(
      "form",
      { class: "parley-compose-form", onsubmit: (e) => this.postComment(e) },
      this.label(h("label", { for: inputId, class: "parley-label" }), (t) => t.yourComment),
      h("div", { class: "parley-compose-row" }, h("div", { class: "parley-combo" }, this.textarea, this.mentions.list), this.label(h("button", { type: "submit", class: "parley-button parley-primary" }), (t) => t.post)),
      this.mentions.hint,
      this.label(h("p", { id: helpId, class: "parley-help" }), (t) => t.privacyTip),
    );
    return h(
      "section",
      { class: "parley-comments-section" },
      this.label(h("h3"), (t) => t.comments),
      this.label(h("p", { class: "parley-help" }), (t) => t.commentsHelp),
      this.olderButton,
      this.emptyNote,
      this.commentList,
      this.form,
      this.notice,
      this.commentError,
    );
  }

  namesSeen() {
    const names = [this.w.nameOf(this.listing.seller_id)];
    for (const m of this.messages.values()) {
      if (m.author) names.push(m.author.name);
      for (const mention of m.mentions ?? []) names.push(mention.name);
    }
    return names;
  }

  async loadComments() {
    const page = await this.client.history(this.room, { limit: HISTORY_PAGE });
    this.messages.clear();
    for (const m of page.messages) this.messages.set(m.seq, m);
    this.more = page.more;
    this.refresh();
  }

  async loadOlder() {
    const oldest = Math.min(...this.messages.keys());
    const page = await this.client.history(this.room, { before: oldest, limit: HISTORY_PAGE });
    for (const m of page.messages) this.messages.set(m.seq, m);
    this.more = page.more;
    this.refresh();
    this.olderButton.focus();
  }

  refresh() {
    if (!this.commentList) return;
    const sorted = [...this.messages.values()].sort((a, b) => a.seq - b.seq);
    this.commentList.replaceChildren(...sorted.map((m) => this.commentItem(m)));
    this.emptyNote.hidden = sorted.length > 0;
    this.olderButton.hidden = !this.more;
    this.renderNegotiations();
    this.renderLikers();
    this.renderSwitchNote();
  }

  commentItem(m) {
    const t = this.t;
    if (m.kind === "system") {
      return h("li", { class: "parley-system", "data-seq": String(m.seq) }, h("p", { class: "parley-text", text: this.w.systemText(m) }));
    }
    const mine = m.author?.id === this.client.user.id;
    const name = m.author?.name ?? "?";
    if (!mine && m.author && this.w.blocked.has(m.author.id)) {
      return h(
        "li",
        { class: "parley-comment parley-blocked", "data-seq": String(m.seq), "data-author": m.author.id },
        h("p", { class: "parley-text", text: t.blockedComment(name) }),
        this.blockButton(m.author, true),
      );
    }
    // A tombstone says why the words are not shown; only words shown can be reported.
    const gone = m.removed ? t.removed : m.deleted ? t.deleted : m.held ? t.held : null;
    const state = m.removed ? " parley-removed" : m.deleted ? " parley-deleted" : m.held ? " parley-held" : "";
    const reportable = !mine && !gone && m.author && !this.w.scoped;
    return h(
      "li",
      { class: `parley-comment${mine ? " parley-mine" : ""}${state}`, "data-seq": String(m.seq), "data-author": m.author?.id ?? "" },
      h(
        "p",
        { class: "parley-meta" },
        h("span", { class: "parley-author", text: `@${name}` }),
        m.author?.id === this.listing.seller_id ? h("span", { class: "parley-tag", text: t.priceBy.seller }) : null,
        h("time", { class: "parley-time", datetime: new Date(m.ts).toISOString(), text: formatTime(m.ts, this.w.intl) }),
        m.edited_ts && !gone ? h("span", { class: "parley-edited", text: t.edited }) : null,
      ),
      gone ? h("p", { class: "parley-text", text: gone }) : messageText(m),
      m.masked_kinds?.length && !gone ? h("p", { class: "parley-masked", text: t.maskedBadge }) : null,
      reportable ? this.commentTools(m) : null,
    );
  }

  /** "Report" (a reason, an optional note, a confirmation) and "Block" under another member's comment. */
  commentTools(m) {
    const t = this.t;
    const selectId = nextId("parley-report-reason");
    const noteId = nextId("parley-report-note");
    const reason = h(
      "select",
      { id: selectId, class: "parley-input parley-report-reason", required: true },
      ["spam", "scam", "off_platform", "harassment", "inappropriate", "other"].map((r) => h("option", { value: r, text: t.reasons[r] })),
    );
    // One line (an input, not a textarea): the comment box stays the section's one textarea.
    const note = h("input", { id: noteId, type: "text", maxlength: "500", autocomplete: "off", class: "parley-input parley-report-note" });
    const status = h("p", { class: "parley-note parley-report-status", role: "status", "data-testid": "report-status" });
    const error = h("p", { class: "parley-error", role: "alert", hidden: true });
    const toggle = h("button", {
      type: "button",
      class: "parley-link-button",
      "data-action": "report",
      "aria-expanded": "false",
      "aria-label": t.reportWhat(m.author.name),
      text: t.report,
      onclick: () => open(form.hidden),
    });
    const open = (show) => {
      form.hidden = !show;
      toggle.setAttribute("aria-expanded", String(show));
      if (show) reason.focus();
      else toggle.focus();
    };
    const form = h(
      "form",
      {
        class: "parley-report-form",
        hidden: true,
        onsubmit: async (e) => {
          e.preventDefault();
          error.hidden = true;
          try {
            const reply = await this.client.report(this.room, m.seq, reason.value, note.value.trim() || null);
            status.textContent = reply.duplicate ? t.reportAlready : t.reportSent;
            open(false);
          } catch (err) {
            this.showError(error, err);
          }
        },
      },
      h("p", { class: "parley-form-title", text: t.reportTitle }),
      h("label", { for: selectId, text: t.reportReason }),
      reason,
      h("label", { for: noteId, text: t.reportNote }),
      note,
      h(
        "div",
        { class: "parley-buttons" },
        h("button", { type: "submit", class: "parley-button parley-primary", "data-action": "send-report", text: t.sendReport }),
        h("button", { type: "button", class: "parley-button", text: t.cancel, onclick: () => open(false) }),
      ),
      error,
    );
    return h("div", { class: "parley-comment-tools" }, h("div", { class: "parley-buttons" }, toggle, this.blockButton(m.author, false)), form, status);
  }

  blockButton(author, blocked) {
    const t = this.t;
    return h("button", {
      type: "button",
      class: "parley-link-button",
      "data-action": blocked ? "unblock" : "block",
      "aria-label": blocked ? t.unblockWho(author.name) : t.blockWho(author.name),
      text: blocked ? t.unblock : t.block,
      onclick: () => this.w.setBlocked(author.id, !blocked).catch((err) => this.showError(this.commentError, err)),
    });
  }

  addMessage(message) {
    this.messages.set(message.seq, message);
    if (message.author) this.w.names.set(message.author.id, message.author.name);
    const item = this.commentItem(message);
    const after = [...this.commentList.children].find((li) => Number(li.dataset.seq) > message.seq);
    this.commentList.insertBefore(item, after ?? null);
    this.emptyNote.hidden = true;
  }

  editMessage(event) {
    const m = this.messages.get(event.target);
    if (!m) return;
    Object.assign(m, { text: event.text, mentions: event.mentions, masked_kinds: event.masked_kinds, edited_ts: event.ts });
    this.commentList.querySelector(`[data-seq="${event.target}"]`)?.replaceWith(this.commentItem(m));
  }

  patchMessage(seq, changes) {
    const m = this.messages.get(seq);
    if (!m) return;
    Object.assign(m, changes);
    this.commentList.querySelector(`[data-seq="${seq}"]`)?.replaceWith(this.commentItem(m));
  }

  /** A held comment shown again: its words come from history, not from the event. */
  async reloadMessage(seq) {
    if (!this.messages.has(seq)) return;
    const page = await this.client.history(this.room, { before: seq + 1, limit: 1 });
    const m = page.messages.find((x) => x.seq === seq);
    if (!m) return;
    this.messages.set(seq, m);
    this.commentList.querySelector(`[data-seq="${seq}"]`)?.replaceWith(this.commentItem(m));
  }

  async postComment(event) {
    event.preventDefault();
    const text = this.textarea.value;
    if (!text.trim()) return;
    this.commentError.hidden = true;
    this.notice.textContent = "";
    try {
      const reply = await this.client.post(this.room, text);
      this.textarea.value = "";
      const lines = [];
      if (reply.masked?.length) {
        const kinds = [...new Set(reply.masked.map((m) => m.kind))];
        lines.push(this.t.maskedNotice(kinds));
      } else if (reply.notice) {
        lines.push(reply.notice);
      }
      if (reply.notified) lines.push(this.t.notified(reply.notified));
      this.notice.textContent = lines.join(" ");
      this.notice.dataset.masked = String(!!reply.masked?.length);
    } catch (err) {
      this.showError(this.commentError, err);
    }
  }
}
