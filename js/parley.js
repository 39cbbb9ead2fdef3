/**
 * Parley's JavaScript client: one ES module, no dependency, no build step.
 *
 *     import { ParleyClient } from "/parley.js";
 *     const client = await ParleyClient.connect("wss://chat.example.com/", token);
 *     client.on("message", (m) => console.log(m.author?.name, m.text));
 *     await client.subscribe("listing:42");
 *     await client.post("listing:42", "Is it still available?");
 *
 * It speaks protocol v1 over the `parley.v1.json` subprotocol (MessagePack is
 * not offered). Requests are matched to replies by id, each with a timeout;
 * an `error` reply rejects with a `ParleyError` carrying `code`, `message`
 * and `details`. Events go to listeners (`on`) and to async iterators
 * (`events()`), in the order the hub sent them.
 *
 * A dropped connection is opened again with capped exponential backoff and
 * jitter; the inbox resumes through `connect` and every room subscribed
 * resumes with `since` and `epoch`, so what was missed arrives as ordinary
 * events before any newer one (or a `reload` event says to read `history`
 * again). `post` keeps one `client_msg_id` across its retries, so a comment
 * whose reply was lost is never stored twice. It mirrors the Python client
 * in `client/`; the protocol is documented in `protocol/README.md`.
 */

export const SUBPROTOCOL = "parley.v1.json";

/** Close codes after which reconnecting cannot help (a client bug, a bad token, a suspension). */
const FATAL_CLOSE_CODES = new Set([4001, 4002, 4003, 4010]);
/** Error codes a request may be retried after (a `post` keeps its client_msg_id). */
const RETRYABLE = new Set(["connection_lost", "timeout", "unavailable", "rate_limited"]);

/** An `error` reply from the hub, or a failure of the connection (`connection_lost`, `timeout`, `closed`). */
export class ParleyError extends Error {
  constructor(code, message, details = null) {
    super(message);
    this.name = "ParleyError";
    /** Stable, for programs: `order_required`, `not_your_turn`, `connection_lost`... */
    this.code = code;
    /** Extra facts for some codes: `details.max_amount` of `discount_too_small`... */
    this.details = details ?? null;
  }
}

/** The connection closed (or could not open) while a request waited for its reply. */
export class ConnectionLostError extends ParleyError {
  constructor(closeCode, reason = "") {
    super("connection_lost", `connection closed (${closeCode ?? "no close frame"})${reason ? `: ${reason}` : ""}`, {
      close_code: closeCode ?? null,
      reason,
    });
    this.name = "ConnectionLostError";
    this.closeCode = closeCode ?? null;
    this.reason = reason;
  }
}

/** No reply came within the request's timeout (the hub may still have done it). */
export class RequestTimeoutError extends ParleyError {
  constructor(op, ms) {
    super("timeout", `no reply to ${op} within ${ms} ms`, { op, timeout_ms: ms });
    this.name = "RequestTimeoutError";
  }
}

/** A fresh random id (128 bits, hex): `crypto.randomUUID` needs a secure context, this does not. */
export function newMessageId() {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The parts of a message's text, split at its mentions: `[{text, mention?}]`.
 * Mentions count code points (not UTF-16 units), as the protocol says.
 */
export function mentionParts(text, mentions = []) {
  const chars = Array.from(text);
  const parts = [];
  let at = 0;
  for (const m of [...mentions].sort((a, b) => a.start - b.start)) {
    if (m.start < at || m.end > chars.length) continue;
    if (m.start > at) parts.push({ text: chars.slice(at, m.start).join("") });
    parts.push({ text: chars.slice(m.start, m.end).join(""), mention: m });
    at = m.end;
  }
  if (at < chars.length) parts.push({ text: chars.slice(at).join("") });
  return parts;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const RESUMED_RECENTLY = 10_000; // ms after resumeNow() in which a reconnect skips its first wait

/** Capped exponential backoff with "equal jitter": half fixed, half random. */
export function backoffDelay(attempt, minMs, maxMs, random = Math.random) {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

export class ParleyClient {
  /**
   * Open a connection and authenticate; resolves once `connect` succeeded.
   * `token` is a string, or a function returning one (or a promise of one):
   * it is called again on each reconnect, so an expired token can be renewed.
   */
  static async connect(url, token, options = {}) {
    const client = new ParleyClient(url, token, options);
    await client.open();
    return client;
  }

  constructor(url, token, options = {}) {
    this.url = url;
    this._token = token;
    this.options = {
      reconnect: true,
      requestTimeout: 10_000,
      connectTimeout: 10_000,
      minBackoff: 250,
      maxBackoff: 10_000,
      maxReconnectAttempts: Infinity,
      postRetries: 4,
      resumeCheckTimeout: 5_000,
      WebSocket: globalThis.WebSocket,
      ...options,
    };
    this._wokenAt = -Infinity; // when the app last came back (resumeNow)
    this._wake = null; // ends the backoff being waited, if any
    this._onForeground = () => {
      if (globalThis.document?.visibilityState !== "hidden") this.resumeNow();
    };

    /** `{id, name, locale}` from the `connect` reply. */
    this.user = null;
    /** The one room of a session opened from an e-mail link, or null. */
    this.scope = null;
    /** `{max_frame_bytes, max_text_chars}` from the `connect` reply. */
    this.limits = null;
    /** `connecting`, `open`, `reconnecting` or `closed`. */
    this.state = "connecting";
    this._ws = null;
    this._nextId = 1;
    this._pending = new Map(); // id -> {op, resolve, reject, timer, fields}
    this._positions = new Map(); // room -> {epoch, seq}: where a reconnect resumes
    this._listeners = new Map(); // event name or "*" -> Set of functions
    this._iterators = new Set();
    this._openWaiters = new Set();
    this._closedByUser = false;
    this._reconnecting = null;
    this._opening = false;
  }

  /** The member's own room, `user:<id>`: notifications, read marks and offers. */
  get inbox() {
    return this.user ? `user:${this.user.id}` : null;
  }

  /** Rooms this client resumes after a reconnect (the inbox included), with their position. */
  get positions() {
    return new Map([...this._positions].map(([room, p]) => [room, { ...p }]));
  }

  // Events.

  /** Listen to one event (`message`, `notification`, `offer`, `typing`...), or `*` for all. Returns a function that stops listening. */
  on(type, listener) {
    let set = this._listeners.get(type);
    if (!set) this._listeners.set(type, (set = new Set()));
    set.add(listener);
    return () => this.off(type, listener);
  }

  off(type, listener) {
    this._listeners.get(type)?.delete(listener);
  }

  once(type, listener) {
    const off = this.on(type, (event) => {
      off();
      listener(event);
    });
    return off;
  }

  /**
   * An async iterator of events (optionally of one room, or of some event names),
   * buffered from the moment it is made:
   * `for await (const event of client.events({room: "listing:42"})) ...`.
   * Breaking out of the loop (or calling `return()`) stops it.
   */
  events({ room = null, types = null } = {}) {
    const client = this;
    const queue = [];
    let wake = null;
    let done = false;
    const entry = {
      push(event) {
        if (room !== null && event.room !== room) return;
        if (types !== null && !types.includes(event.event)) return;
        queue.push(event);
        if (wake) {
          wake();
          wake = null;
        }
      },
    };
    this._iterators.add(entry);
    const finish = () => {
      done = true;
      client._iterators.delete(entry);
      if (wake) wake();
      return Promise.resolve({ value: undefined, done: true });
    };
    return {
      [Symbol.asyncIterator]() {
        return this;
      },
      async next() {
        while (!queue.length && !done) await new Promise((resolve) => (wake = resolve));
        if (queue.length) return { value: queue.shift(), done: false };
        return { value: undefined, done: true };
      },
      return: finish,
    };
  }

  /** The next event matching `predicate` (an event name or a function), or a timeout error. */
  nextEvent(predicate, timeout = this.options.requestTimeout) {
    const test = typeof predicate === "function" ? predicate : (e) => predicate == null || e.event === predicate;
    return new Promise((resolve, reject) => {
      const off = this.on("*", (event) => {
        if (!test(event)) return;
        clearTimeout(timer);
        off();
        resolve(event);
      });
      const timer = setTimeout(() => {
        off();
        reject(new RequestTimeoutError("event", timeout));
      }, timeout);
    });
  }

  _emit(event) {
    for (const listener of [...(this._listeners.get(event.event) ?? []), ...(this._listeners.get("*") ?? [])]) {
      try {
        listener(event);
      } catch (err) {
        // A listener's bug must not stop the others, nor the connection.
        setTimeout(() => {
          throw err;
        });
      }
    }
    for (const it of this._iterators) it.push(event);
  }

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    // Listening to the page's foreground only while there is a connection to keep.
    if (state === "open" || state === "closed") this._listenForeground(state === "open");
    this._emit({ event: "state", state });
  }

  // Requests.

  /**
   * Send one request and resolve with its `result`; reject with a `ParleyError`.
   * While the client reconnects, the request waits for the connection (within its timeout).
   */
  async request(op, fields = {}, { timeout = this.options.requestTimeout } = {}) {
    const deadline = Date.now() + timeout;
    if (this.state !== "open") await this._waitOpen(deadline, op);
    return this._send(op, fields, Math.max(1, deadline - Date.now()));
  }

  _send(op, fields, timeout) {
    const ws = this._ws;
    if (!ws || ws.readyState !== 1) return Promise.reject(new ConnectionLostError(null, "not connected"));
    const id = this._nextId++;
    const clean = {};
    for (const [key, value] of Object.entries(fields)) if (value !== undefined && value !== null) clean[key] = value;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new RequestTimeoutError(op, timeout));
      }, timeout);
      this._pending.set(id, { op, fields: clean, resolve, reject, timer });
      try {
        ws.send(JSON.stringify({ id, op, ...clean }));
      } catch (err) {
        clearTimeout(timer);
        this._pending.delete(id);
        reject(new ConnectionLostError(null, String(err?.message ?? err)));
      }
    });
  }

  _waitOpen(deadline, op) {
    if (this.state === "closed") return Promise.reject(new ParleyError("closed", "the client is closed"));
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: () => {
          clearTimeout(timer);
          this._openWaiters.delete(waiter);
          resolve();
        },
        reject: (err) => {
          clearTimeout(timer);
          this._openWaiters.delete(waiter);
          reject(err);
        },
      };
      const timer = setTimeout(
        () => waiter.reject(new RequestTimeoutError(op, Math.max(0, deadline - Date.now()))),
        Math.max(0, deadline - Date.now()),
      );
      this._openWaiters.add(waiter);
    });
  }

  // Connection.

  /** Open the connection and send `connect` (done by `ParleyClient.connect`). */
  async open() {
    this._closedByUser = false;
    this._setState(this.user ? "reconnecting" : "connecting");
    this._opening = true;
    try {
      return await this._open();
    } finally {
      this._opening = false;
    }
  }

  async _open() {
    const token = typeof this._token === "function" ? await this._token() : this._token;
    const ws = await this._handshake();
    this._ws = ws;
    ws.onmessage = (message) => this._onFrame(message.data);
    ws.onclose = (close) => this._onClose(ws, close.code, close.reason);
    const fields = { token };
    const inbox = this.inbox && this._positions.get(this.inbox);
    if (inbox && !this.scope) {
      fields.since = inbox.seq;
      fields.epoch = inbox.epoch;
    }
    let result;
    try {
      result = await this._send("connect", fields, this.options.connectTimeout);
    } catch (err) {
      this._ws = null;
      ws.onclose = null;
      try {
        ws.close();
      } catch {
        /* already closing */
      }
      throw err;
    }
    this.user = result.user;
    this.scope = result.scope ?? null;
    this.limits = result.limits ?? null;
    this._setState("open");
    for (const waiter of [...this._openWaiters]) waiter.resolve();
    return result;
  }

  _handshake() {
    const WS = this.options.WebSocket;
    if (!WS) throw new ParleyError("unsupported", "no WebSocket implementation: pass options.WebSocket");
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new WS(this.url, [SUBPROTOCOL]);
      } catch (err) {
        reject(new ConnectionLostError(null, String(err?.message ?? err)));
        return;
      }
      const timer = setTimeout(() => {
        ws.onopen = ws.onclose = ws.onerror = null;
        ws.close();
        reject(new ConnectionLostError(null, "handshake timed out"));
      }, this.options.connectTimeout);
      ws.onerror = () => {}; // the close that follows says why
      ws.onclose = (close) => {
        clearTimeout(timer);
        reject(new ConnectionLostError(close.code, close.reason || "could not connect"));
      };
      ws.onopen = () => {
        clearTimeout(timer);
        ws.onclose = null;
        if (ws.protocol !== SUBPROTOCOL) {
          ws.close();
          reject(new ParleyError("bad_subprotocol", `the hub chose ${JSON.stringify(ws.protocol)}`));
          return;
        }
        resolve(ws);
      };
    });
  }

  /** Close for good: no reconnect; waiting requests reject with `connection_lost`. */
  close() {
    this._closedByUser = true;
    this._wake?.();
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      ws.onclose = null;
      try {
        ws.close(1000);
      } catch {
        /* already closed */
      }
    }
    this._failPending(1000, "closed by the client");
    for (const waiter of [...this._openWaiters]) waiter.reject(new ParleyError("closed", "the client is closed"));
    if (this.state !== "closed") {
      this._setState("closed");
      this._emit({ event: "closed", code: 1000, reason: "closed by the client" });
    }
  }

  _failPending(code, reason) {
    const pending = [...this._pending.values()];
    this._pending.clear();
    for (const p of pending) {
      clearTimeout(p.timer);
      p.reject(new ConnectionLostError(code, reason));
    }
  }

  _onClose(ws, code, reason) {
    if (ws !== this._ws) return;
    this._ws = null;
    this._failPending(code, reason);
    if (this._opening) return; // open() fails with it; its caller decides
    const fatal = FATAL_CLOSE_CODES.has(code) && !(code === 4001 && typeof this._token === "function");
    if (this._closedByUser) return;
    if (!this.options.reconnect || fatal) {
      this._setState("closed");
      for (const waiter of [...this._openWaiters]) waiter.reject(new ConnectionLostError(code, reason));
      this._emit({ event: "closed", code, reason });
      return;
    }
    this._emit({ event: "disconnected", code, reason });
    this._reconnecting ??= this._reconnect().finally(() => (this._reconnecting = null));
  }

  /**
   * The app is back in the foreground, or online again: check the connection now,
   * and while reconnecting, try at once instead of waiting out the backoff. A page
   * calls it by itself (`visibilitychange`, `pageshow`, `resume`, `online`); a host
   * app may call it too (a WebView told by its app that it is active again).
   */
  resumeNow() {
    this._wokenAt = Date.now();
    if (this._wake) {
      this._wake();
      return;
    }
    const ws = this._ws;
    if (this.state !== "open" || !ws) return;
    // A socket the system dropped while the app slept may still look open: ask.
    this._send("ping", {}, this.options.resumeCheckTimeout).catch((err) => {
      if (err?.code !== "timeout" || ws !== this._ws) return;
      ws.onclose = null;
      try {
        ws.close(3000, "no answer after resuming");
      } catch {
        /* already closing */
      }
      this._onClose(ws, 1006, "no answer after resuming");
    });
  }

  _listenForeground(on) {
    const doc = globalThis.document;
    const win = globalThis.window;
    if (!doc?.addEventListener || !win?.addEventListener) return;
    const method = on ? "addEventListener" : "removeEventListener";
    doc[method]("visibilitychange", this._onForeground);
    doc[method]("resume", this._onForeground); // a frozen page thawed
    win[method]("pageshow", this._onForeground);
    win[method]("online", this._onForeground);
  }

  /** Wait `ms` before a reconnect attempt, unless `resumeNow` ends the wait. */
  _backoff(ms) {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this._wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this._wake = done;
    });
  }

  async _reconnect() {
    const { minBackoff, maxBackoff, maxReconnectAttempts } = this.options;
    this._setState("reconnecting");
    for (let attempt = 0; attempt < maxReconnectAttempts; attempt++) {
      // Just back in the foreground: the member is looking, try at once.
      const woken = attempt === 0 && Date.now() - this._wokenAt < RESUMED_RECENTLY;
      await this._backoff(woken ? 0 : backoffDelay(attempt, minBackoff, maxBackoff));
      if (this._closedByUser) return;
      try {
        await this.open();
      } catch (err) {
        const fatal =
          err.code === "unauthorized" ||
          err.code === "conflict" ||
          err.code === "restricted" ||
          (err.closeCode != null && FATAL_CLOSE_CODES.has(err.closeCode));
        if (fatal && typeof this._token !== "function") {
          this._setState("closed");
          this._emit({ event: "closed", code: err.closeCode ?? 4001, reason: err.message, error: err });
          for (const waiter of [...this._openWaiters]) waiter.reject(err);
          return;
        }
        this._setState("reconnecting");
        continue;
      }
      if (await this._resubscribe()) {
        this._emit({ event: "resumed" });
        return;
      }
    }
    this._setState("closed");
    this._emit({ event: "closed", code: null, reason: "gave up reconnecting" });
  }

  /** Subscribe again to every room, from the last seq seen; false if the connection dropped meanwhile. */
  async _resubscribe() {
    for (const [room, position] of [...this._positions]) {
      if (room === this.inbox) continue; // resumed by connect itself
      try {
        await this._send("subscribe", { room, since: position.seq, epoch: position.epoch }, this.options.requestTimeout);
      } catch (err) {
        if (err.code === "connection_lost") return false;
        // The room went away meanwhile (closed, or no longer ours): say so, forget it.
        this._positions.delete(room);
        this._emit({ event: "subscribe_failed", room, error: err });
      }
    }
    return true;
  }

  _onFrame(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return; // the hub sends JSON only; nothing to do with anything else
    }
    if (message === null || typeof message !== "object") return;
    if (typeof message.event === "string") {
      this._onEvent(message);
      return;
    }
    const pending = this._pending.get(message.id);
    if (!pending) return;
    this._pending.delete(message.id);
    clearTimeout(pending.timer);
    if (message.error) {
      const { code, message: text, details } = message.error;
      pending.reject(new ParleyError(code, text, details));
      return;
    }
    const result = message.result ?? {};
    // Within this frame's turn: what was missed is told before any later event.
    if (pending.op === "subscribe") this._joined(result, pending.fields.since != null);
    if (pending.op === "connect" && result.inbox) {
      this.user = result.user;
      this._joined(result.inbox, pending.fields.since != null);
    }
    pending.resolve(result);
  }

  _onEvent(event) {
    const room = event.room;
    if (typeof room === "string" && Number.isInteger(event.seq)) {
      const position = this._positions.get(room);
      if (position) {
        if (event.seq <= position.seq) return; // already seen (a resume overlapping live events)
        position.seq = event.seq;
      }
    }
    if (event.event === "reload" && typeof room === "string") {
      this._positions.set(room, { epoch: event.epoch, seq: 0 });
    }
    if (event.event === "room_closed" && typeof room === "string" && room.startsWith("listing:")) {
      this._positions.delete(room); // the hub let us go: nothing to resume
    }
    this._emit(event);
  }

  _joined(result, resuming) {
    const room = result.room;
    if (result.reload) {
      this._positions.set(room, { epoch: result.epoch, seq: result.seq });
      this._emit({ event: "reload", room, epoch: result.epoch });
      return;
    }
    const known = this._positions.get(room);
    if (resuming && known && known.epoch === result.epoch) {
      for (const event of result.missed ?? []) this._onEvent(event);
      known.seq = Math.max(known.seq, result.seq);
    } else {
      this._positions.set(room, { epoch: result.epoch, seq: result.seq });
      for (const event of result.missed ?? []) this._emit(event);
    }
  }

  // Ops.

  /** A round trip; resolves with the hub's clock, `{ts}` (ms). */
  ping() {
    return this.request("ping");
  }

  /** Watch a room (`listing:<id>` or `order:<id>`); resumed by every reconnect. */
  subscribe(room, { since = null } = {}) {
    const known = this._positions.get(room);
    return this.request("subscribe", { room, since, epoch: since != null ? known?.epoch : null });
  }

  async unsubscribe(room) {
    this._positions.delete(room);
    return this.request("unsubscribe", { room });
  }

  /** A page of messages, newest first: `{room, epoch, messages, more}`. */
  history(room, { before = null, limit = 50 } = {}) {
    return this.request("history", { room, before, limit });
  }

  /**
   * Post a comment. Retries after a lost connection, a timeout, `unavailable` or
   * `rate_limited` with the same `client_msg_id` (the hub stores it once).
   */
  async post(room, text, { clientMsgId = newMessageId(), retries = this.options.postRetries, timeout } = {}) {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.request("post", { room, text, client_msg_id: clientMsgId }, { timeout });
      } catch (err) {
        err.clientMsgId = clientMsgId;
        if (attempt >= retries || !RETRYABLE.has(err.code) || this.state === "closed") throw err;
        await sleep(backoffDelay(attempt, this.options.minBackoff, this.options.maxBackoff));
      }
    }
  }

  edit(room, seq, text) {
    return this.request("edit", { room, seq, text });
  }

  delete(room, seq) {
    return this.request("delete", { room, seq });
  }

  /** A page of the inbox, newest first: `{notifications, unread, read_up_to, more, seq, epoch}`. */
  notifications({ before = null, limit = 50 } = {}) {
    return this.request("notifications", { before, limit });
  }

  notificationsRead(upTo) {
    return this.request("notifications_read", { up_to: upTo });
  }

  /** Order rooms: mark read up to `seq`; `{room, up_to, unread}`. */
  read(room, seq) {
    return this.request("read", { room, seq });
  }

  /** "My orders": `role` is `sales` or `purchases`; `{conversations, more}`. */
  conversations(role, { before = null, limit = 20 } = {}) {
    return this.request("conversations", { role, before, limit });
  }

  /** Tell an order room's other party that this member is typing; false when the hub skipped it. */
  async typing(room) {
    return (await this.request("typing", { room })).sent === true;
  }

  // Offers (R5-R7). Amounts are integers of minor units (4500 is 45.00).

  offersEnable(listing, enabled = true) {
    return this.request("offers_enable", { listing, enabled });
  }

  async offerMake(listing, amount) {
    return (await this.request("offer_make", { listing, amount })).offer;
  }

  /** `action`: `accept`, `decline`, `counter` (with `amount`) or `withdraw`. */
  async offerRespond(offer, action, amount = null) {
    return (await this.request("offer_respond", { offer, action, amount })).offer;
  }

  likers(listing, { before = null, limit = 50 } = {}) {
    return this.request("likers", { listing, before, limit });
  }

  /** `to`: `"all"` (the 20 most recent likers) or a list of user ids. */
  offerToLikers(listing, amount, to = "all") {
    return this.request("offer_to_likers", { listing, amount, to });
  }

  async offers({ listing = null, state = null, limit = 50 } = {}) {
    return (await this.request("offers", { listing, state, limit })).offers;
  }

  // A member's own choices (docs/moderation.md).

  /** Block a member: their mentions and messages notify nothing; no offers between you. */
  block(user) {
    return this.request("block", { user });
  }

  unblock(user) {
    return this.request("unblock", { user });
  }

  /** The members blocked, `[{user, since}]`, most recent first: hide their public comments. */
  async blocks() {
    return (await this.request("blocks")).blocks;
  }

  /** No mention or message notifications from `room`; its events still arrive while watched. */
  mute(room) {
    return this.request("mute", { room });
  }

  unmute(room) {
    return this.request("unmute", { room });
  }

  async mutes() {
    return (await this.request("mutes")).mutes;
  }

  /**
   * Report another member's message: `reason` is spam, scam, off_platform, harassment,
   * inappropriate or other; `{report, reason, duplicate}` (a repeat answers the first).
   */
  report(room, seq, reason, note = null) {
    return this.request("report", { room, seq, reason, note });
  }
}

export default ParleyClient;
