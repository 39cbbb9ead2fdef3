/** The `@` autocomplete of a comment box (R4): usernames seen in the room, by keyboard or pointer. */

import { fold, h, nextId } from "./dom.js";

const MAX_SUGGESTIONS = 8;

export class MentionBox {
  constructor(view, textarea, names) {
    this.view = view;
    this.textarea = textarea;
    this.names = names; // () => iterable of usernames seen
    this.options = [];
    this.active = -1;
    this.listId = nextId("parley-mentions");
    this.list = h("ul", { id: this.listId, class: "parley-suggestions", role: "listbox", hidden: true });
    view.label(this.list, (t) => t.suggestions, "aria-label");
    this.hint = h("span", { class: "parley-sr-only", "aria-live": "polite" });
    textarea.setAttribute("role", "combobox");
    textarea.setAttribute("aria-autocomplete", "list");
    textarea.setAttribute("aria-controls", this.listId);
    textarea.setAttribute("aria-expanded", "false");
    textarea.addEventListener("input", () => this.update());
    textarea.addEventListener("click", () => this.update());
    textarea.addEventListener("keydown", (e) => this.onKey(e), true);
    textarea.addEventListener("blur", () => setTimeout(() => this.close(), 150));
  }

  /** The `@prefix` being typed just before the caret, if any. */
  query() {
    const before = this.textarea.value.slice(0, this.textarea.selectionStart);
    const match = /(^|[\s(\[{"'«“,;!?*>])@([\p{L}\p{M}\p{N}_.-]{0,64})$/u.exec(before);
    return match ? { prefix: match[2], start: before.length - match[2].length - 1 } : null;
  }

  update() {
    const q = this.query();
    if (!q) return this.close();
    const prefix = fold(q.prefix);
    const me = this.view.client.user?.name;
    const found = [...new Set(this.names())]
      .filter((name) => name && name !== me && fold(name).startsWith(prefix))
      .sort((a, b) => a.localeCompare(b))
      .slice(0, MAX_SUGGESTIONS);
    if (!found.length) return this.close();
    this.options = found;
    this.active = 0;
    this.render();
  }

  render() {
    this.list.replaceChildren(
      ...this.options.map((name, i) =>
        h(
          "li",
          {
            id: `${this.listId}-${i}`,
            role: "option",
            class: "parley-suggestion",
            "aria-selected": String(i === this.active),
            onmousedown: (e) => {
              e.preventDefault(); // keep the focus in the text box
              this.choose(i);
            },
          },
          `@${name}`,
        ),
      ),
    );
    this.list.hidden = false;
    this.textarea.setAttribute("aria-expanded", "true");
    this.textarea.setAttribute("aria-activedescendant", `${this.listId}-${this.active}`);
    this.hint.textContent = this.view.t.suggestionsCount(this.options.length);
  }

  close() {
    this.options = [];
    this.active = -1;
    this.list.hidden = true;
    this.textarea.setAttribute("aria-expanded", "false");
    this.textarea.removeAttribute("aria-activedescendant");
    this.hint.textContent = "";
  }

  get open() {
    return !this.list.hidden && this.options.length > 0;
  }

  onKey(event) {
    if (!this.open) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      this.active = (this.active + step + this.options.length) % this.options.length;
      this.render();
    } else if (event.key === "Enter" || event.key === "Tab") {
      event.preventDefault();
      event.stopImmediatePropagation();
      this.choose(this.active);
    } else if (event.key === "Escape") {
      event.preventDefault();
      event.stopImmediatePropagation();
      this.close();
    }
  }

  choose(i) {
    const q = this.query();
    const name = this.options[i];
    if (!q || !name) return this.close();
    const value = this.textarea.value;
    const caret = this.textarea.selectionStart;
    const inserted = `@${name} `;
    this.textarea.value = value.slice(0, q.start) + inserted + value.slice(caret);
    const at = q.start + inserted.length;
    this.textarea.setSelectionRange(at, at);
    this.close();
    this.textarea.focus();
  }
}

/** A message's text with its mentions marked, as text nodes only. */
