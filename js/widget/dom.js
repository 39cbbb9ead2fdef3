/**
 * The widget's building blocks: elements made from text (never from markup), icons,
 * URLs that are safe to load, and `View`, a screen whose labels follow the language.
 */

import { mentionParts } from "../parley.js";

const SVG = "http://www.w3.org/2000/svg";
let uid = 0;

/** A unique element id, for labels and ARIA references. */
export const nextId = (prefix) => `${prefix}-${++uid}`;

/** Usernames compare case-insensitively, accents included. */
export const fold = (s) => s.normalize("NFC").toLocaleLowerCase();

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value == null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "value") el.value = value;
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function icon(name) {
  const paths = {
    bell: "M12 22a2.5 2.5 0 0 0 2.5-2.5h-5A2.5 2.5 0 0 0 12 22zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1z",
    chat: "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H8l-5 4V5a2 2 0 0 1 1-2zm3 6v2h10V9zm0 4v2h7v-2z",
  };
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.setAttribute("class", `parley-icon parley-icon-${name}`);
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", paths[name]);
  svg.append(path);
  return svg;
}

/** Only URLs that load an image or open a page: no `javascript:`, no markup. */
export function safeUrl(url, { images = false } = {}) {
  if (typeof url !== "string" || !url) return null;
  if (images && /^data:image\/(png|jpeg|gif|webp|svg\+xml)[;,]/i.test(url)) return url;
  try {
    const parsed = new URL(url, document.baseURI);
    return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
  } catch {
    return null;
  }
}

/** A screen of the widget: labels that follow the language, listeners removed with it. */
export class View {
  constructor(widget) {
    this.w = widget;
    this.bindings = [];
    this.offs = [];
    this.timers = new Set();
  }

  get t() {
    return this.w.t;
  }

  get client() {
    return this.w.client;
  }

  /** An element whose text (or an attribute) is written again when the language changes. */
  label(el, fn, attribute = null) {
    this.bindings.push([el, fn, attribute]);
    this._apply(el, fn, attribute);
    return el;
  }

  _apply(el, fn, attribute) {
    const value = fn(this.t);
    if (attribute) el.setAttribute(attribute, value);
    else el.textContent = value;
  }

  relabel() {
    for (const [el, fn, attribute] of this.bindings) this._apply(el, fn, attribute);
    this.refresh();
  }

  /** Rebuild what depends on data (lists); called on language changes too. */
  refresh() {}

  listen(type, fn) {
    this.offs.push(this.client.on(type, fn));
  }

  later(fn, ms) {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
    return timer;
  }

  destroy() {
    for (const off of this.offs) off();
    for (const timer of this.timers) clearTimeout(timer);
    this.offs = [];
  }

  /** Show an error of an op (localized by its code) in `el`. */
  showError(el, err) {
    el.textContent = this.w.errorText(err);
    el.hidden = false;
  }
}

export function messageText(message) {
  const p = h("p", { class: "parley-text" });
  for (const part of mentionParts(message.text ?? "", message.mentions ?? [])) {
    p.append(part.mention ? h("span", { class: "parley-mention", text: part.text }) : document.createTextNode(part.text));
  }
  return p;
}
