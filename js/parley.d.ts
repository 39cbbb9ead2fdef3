// TypeScript declarations for Parley's JavaScript client (/parley.js), protocol v1.
// The wire objects are documented in protocol/README.md; fields marked optional
// appear only in some cases. Clients should ignore fields they do not know.

export declare const SUBPROTOCOL: "parley.v1.json";

/** A stable error code: the hub's (protocol/README.md#error-codes) or the client's own. */
export type ErrorCode =
  | "bad_frame"
  | "bad_encoding"
  | "bad_request"
  | "unknown_op"
  | "missing_id"
  | "too_large"
  | "not_connected"
  | "already_connected"
  | "forbidden"
  | "not_found"
  | "order_required"
  | "contact_details"
  | "not_subscribed"
  | "conflict"
  | "rate_limited"
  | "unavailable"
  | "offers_disabled"
  | "listing_unavailable"
  | "not_your_turn"
  | "offer_exists"
  | "offer_closed"
  | "offer_expired"
  | "price_out_of_range"
  | "discount_too_small"
  | "too_many_recipients"
  | "read_only"
  | "blocked"
  | "limit_reached"
  | "restricted"
  | "internal"
  | "unauthorized"
  // The client's own:
  | "connection_lost"
  | "timeout"
  | "closed"
  | "bad_subprotocol"
  | "unsupported"
  | (string & {});

export declare class ParleyError extends Error {
  constructor(code: ErrorCode, message: string, details?: Record<string, unknown> | null);
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | null;
  /** Set on errors of `post`: the id its retries used. */
  clientMsgId?: string;
}

export declare class ConnectionLostError extends ParleyError {
  constructor(closeCode: number | null, reason?: string);
  readonly code: "connection_lost";
  readonly closeCode: number | null;
  readonly reason: string;
}

export declare class RequestTimeoutError extends ParleyError {
  constructor(op: string, ms: number);
  readonly code: "timeout";
}

export declare function newMessageId(): string;
export declare function backoffDelay(attempt: number, minMs: number, maxMs: number, random?: () => number): number;
export declare function mentionParts(text: string, mentions?: Mention[]): Array<{ text: string; mention?: Mention }>;

// Wire objects.

export type Room = `listing:${string}` | `order:${string}`;
export type Inbox = `user:${string}`;
export type Ms = number;

export interface User {
  id: string;
  name: string;
  locale: string;
}

export interface Author {
  id: string;
  name: string;
}

export interface Mention {
  user_id: string;
  name: string;
  /** Code points, not UTF-16 units: see `mentionParts`. */
  start: number;
  end: number;
}

export type ContactKind = "email" | "phone" | "social";

export type OrderStatus =
  | "created"
  | "shipped"
  | "delivered"
  | "return_requested"
  | "return_accepted"
  | "return_declined"
  | "completed"
  | "cancelled";

export type SystemData =
  | { type: "listing_edited" | "listing_price_changed" | "listing_status_changed"; fields?: string[] }
  | { type: "listing_photos_added"; count: number }
  | {
      type: "order_opened";
      order_id: string;
      listing_id: string;
      buyer_id: string;
      seller_id: string;
      disclaimer: "off_platform_not_covered";
    }
  | {
      type: "order_status";
      status: OrderStatus;
      /** The sentence in each language Parley writes: `en`, `fr-CA`. */
      texts: Record<string, string>;
      carrier?: string;
      carrier_name?: string;
      tracking_number?: string;
      tracking_urls?: Record<string, string>;
      reason?: string;
    }
  | { type: string; [key: string]: unknown };

export interface Message {
  room: Room;
  seq: number;
  kind: "comment" | "system";
  author: Author | null;
  text: string;
  ts: Ms;
  data?: SystemData;
  edited_ts?: Ms;
  deleted?: true;
  mentions?: Mention[];
  masked_kinds?: ContactKind[];
}

export type OfferState = "open" | "accepted" | "declined" | "withdrawn" | "expired" | "item_sold";
export type Party = "buyer" | "seller";

export interface Negotiation {
  id: string;
  listing: string;
  seller: string;
  buyer: string;
  currency: string;
  item_price: number;
  price: number;
  discount_percent: number;
  state: OfferState;
  turn: Party | null;
  your_turn: boolean;
  expires_at: Ms | null;
  history: Array<{ by: Party; amount: number; at: Ms }>;
  origin: Party;
  ended_by: Party | null;
  updated_at: Ms;
  version: number;
}

export type Notification =
  | { kind: "mention"; room: Room; seq: number; author: Author; excerpt: string }
  | {
      kind: "order_opened";
      order_id: string;
      room: Room;
      listing_id: string;
      listing_title: string | null;
      role: Party;
    }
  | { kind: "order_message"; order_id: string; room: Room; seq: number; author: Author; excerpt: string }
  | {
      kind: "order_status";
      order_id: string;
      room: Room;
      status: OrderStatus;
      tracking_number?: string;
      carrier?: string;
      tracking_url?: string;
      reason?: string;
    }
  | {
      kind:
        | "offer_received"
        | "offer_countered"
        | "offer_accepted"
        | "offer_declined"
        | "offer_withdrawn"
        | "offer_expired"
        | "offer_item_sold";
      offer_id: string;
      room: Room;
      listing_id: string;
      listing_title: string | null;
      amount: number;
      currency: string;
      author?: Author;
      offer: Negotiation;
    }
  | { kind: string; [key: string]: unknown };

export interface Conversation {
  order_id: string;
  room: Room;
  status: OrderStatus;
  created_at: Ms;
  listing: { id: string; title: string; photo_url: string | null } | null;
  counterpart: { id: string; name: string | null };
  last_message: {
    seq: number;
    ts: Ms;
    kind: "comment" | "system";
    author: Author | null;
    excerpt: string;
    deleted?: true;
  } | null;
  unread: number;
  read_up_to: number;
}

// Events.

export interface MessageEvent extends Message {
  event: "message";
}
export interface MessageEditedEvent {
  event: "message_edited";
  room: Room;
  seq: number;
  target: number;
  text: string;
  ts: Ms;
  mentions: Mention[];
  masked_kinds: ContactKind[];
}
export interface MessageDeletedEvent {
  event: "message_deleted";
  room: Room;
  seq: number;
  target: number;
  ts: Ms;
}
export interface NotificationEvent {
  event: "notification";
  room: Inbox;
  seq: number;
  ts: Ms;
  notification: Notification;
}
export interface NotificationsReadEvent {
  event: "notifications_read";
  room: Inbox;
  seq: number;
  ts: Ms;
  up_to: number;
  unread: number;
}
export interface OfferEvent {
  event: "offer";
  room: Inbox;
  seq: number;
  ts: Ms;
  offer: Negotiation;
}
export interface ReadEvent {
  event: "read";
  room: Room;
  seq: number;
  ts: Ms;
  user_id: string;
  up_to: number;
}
export interface RoomClosedEvent {
  event: "room_closed" | "room_reopened";
  room: Room;
  seq: number;
  ts: Ms;
  reason: string;
}
/** Ephemeral (no seq, may be lost): the other party of an order is typing. */
export interface TypingEvent {
  event: "typing";
  room: Room;
  user_id: string;
  name: string;
}
/** Ephemeral: a party of an order came to its room or left it (state, not transition). */
export interface PresenceEvent {
  event: "presence";
  room: Room;
  user_id: string;
  online: boolean;
}
/** Drop what is shown for the room and read `history` (for the inbox: `notifications`) again. */
export interface ReloadEvent {
  event: "reload";
  room: Room | Inbox;
  epoch: string;
}
// The client's own events.
export interface StateEvent {
  event: "state";
  state: ClientState;
}
export interface DisconnectedEvent {
  event: "disconnected";
  code: number;
  reason: string;
}
export interface ResumedEvent {
  event: "resumed";
}
export interface ClosedEvent {
  event: "closed";
  code: number | null;
  reason: string;
  error?: ParleyError;
}
export interface SubscribeFailedEvent {
  event: "subscribe_failed";
  room: Room;
  error: ParleyError;
}

export interface EventMap {
  message: MessageEvent;
  message_edited: MessageEditedEvent;
  message_deleted: MessageDeletedEvent;
  notification: NotificationEvent;
  notifications_read: NotificationsReadEvent;
  offer: OfferEvent;
  read: ReadEvent;
  room_closed: RoomClosedEvent;
  room_reopened: RoomClosedEvent;
  typing: TypingEvent;
  presence: PresenceEvent;
  reload: ReloadEvent;
  state: StateEvent;
  disconnected: DisconnectedEvent;
  resumed: ResumedEvent;
  closed: ClosedEvent;
  subscribe_failed: SubscribeFailedEvent;
}
export type ParleyEvent = EventMap[keyof EventMap];

// Results.

export interface SubscribeResult {
  room: Room;
  epoch: string;
  seq: number;
  missed?: ParleyEvent[];
  reload?: true;
  /** Order rooms: how far each party has read. */
  read?: Record<string, number>;
  /** Order rooms: the caller's unread count. */
  unread?: number;
  /** Order rooms: whether the other party watches the room now. */
  online?: Record<string, boolean>;
  /** Listing rooms: how many members watch it now. */
  watchers?: number;
}

export interface ConnectResult {
  user: User;
  limits: { max_frame_bytes: number; max_text_chars: number };
  /** `null` for a session opened from an e-mail link. */
  inbox: SubscribeResult | null;
  /** A session from an e-mail link: the one room it may use. */
  scope?: string;
}

export interface PostResult {
  room: Room;
  seq: number;
  ts: Ms;
  duplicate: boolean;
  mentions?: Mention[];
  notified?: number;
  not_notified?: number;
  reason?: "too_many_mentions" | "mentions_rate_limited" | "unavailable";
  masked?: Array<{ kind: ContactKind; start: number; end: number }>;
  /** Why details were masked, in the connection's language, to show the author (R8). */
  notice?: string;
}

export interface EditResult {
  room: Room;
  seq: number;
  target: number;
  mentions?: Mention[];
  notified?: number;
  not_notified?: number;
  reason?: string;
  masked?: Array<{ kind: ContactKind; start: number; end: number }>;
  notice?: string;
}

export interface HistoryResult {
  room: Room;
  epoch: string;
  messages: Message[];
  more: boolean;
}

export interface NotificationsResult {
  room: Inbox;
  epoch: string;
  seq: number;
  notifications: Array<{ seq: number; ts: Ms; read: boolean; notification: Notification }>;
  unread: number;
  read_up_to: number;
  more: boolean;
}

export interface LikersResult {
  listing: string;
  likers: Array<{ user_id: string; name: string; liked_at: Ms; open_offer: string | null }>;
  more: boolean;
}

export interface OfferToLikersResult {
  listing: string;
  sent: Array<{ user_id: string; offer: Negotiation }>;
  skipped: Array<{ user_id: string; reason: "offer_exists" | "not_a_liker" | "own_listing" | string }>;
}

export type ClientState = "connecting" | "open" | "reconnecting" | "closed";

export interface ClientOptions {
  /** Reconnect after a dropped connection (default true). */
  reconnect?: boolean;
  /** Milliseconds a request waits for its reply (default 10000). */
  requestTimeout?: number;
  /** Milliseconds the handshake and `connect` may take (default 10000). */
  connectTimeout?: number;
  /** Backoff between reconnect attempts: from `minBackoff` doubling up to `maxBackoff` ms, with jitter. */
  minBackoff?: number;
  maxBackoff?: number;
  maxReconnectAttempts?: number;
  /** Retries of a `post` (same client_msg_id) after a lost connection, a timeout, `unavailable` or `rate_limited`. */
  postRetries?: number;
  /** Milliseconds `resumeNow` waits for the hub's answer before it calls the connection lost (default 5000). */
  resumeCheckTimeout?: number;
  /** A WebSocket class, for runtimes without a global one. */
  WebSocket?: typeof WebSocket;
}

export type TokenSource = string | (() => string | Promise<string>);

export interface EventIterator<E> extends AsyncIterableIterator<E> {
  return(): Promise<IteratorResult<E, undefined>>;
}

export declare class ParleyClient {
  static connect(url: string, token: TokenSource, options?: ClientOptions): Promise<ParleyClient>;
  constructor(url: string, token: TokenSource, options?: ClientOptions);

  readonly url: string;
  readonly options: Required<ClientOptions>;
  readonly user: User | null;
  readonly scope: string | null;
  readonly limits: ConnectResult["limits"] | null;
  readonly state: ClientState;
  /** `user:<id>`, once connected. */
  readonly inbox: Inbox | null;
  /** A copy of where each room resumes from. */
  readonly positions: Map<string, { epoch: string; seq: number }>;

  open(): Promise<ConnectResult>;
  close(): void;
  /**
   * The app is in the foreground again, or online: check the connection now and, while
   * reconnecting, try at once. Pages call it by themselves (visibilitychange, pageshow,
   * resume, online); a host app's WebView bridge may call it too.
   */
  resumeNow(): void;

  on<K extends keyof EventMap>(type: K, listener: (event: EventMap[K]) => void): () => void;
  on(type: "*", listener: (event: ParleyEvent) => void): () => void;
  off(type: string, listener: (event: never) => void): void;
  once<K extends keyof EventMap>(type: K, listener: (event: EventMap[K]) => void): () => void;
  events(options?: { room?: string | null; types?: Array<keyof EventMap> | null }): EventIterator<ParleyEvent>;
  nextEvent<K extends keyof EventMap>(type: K, timeout?: number): Promise<EventMap[K]>;
  nextEvent(predicate: (event: ParleyEvent) => boolean, timeout?: number): Promise<ParleyEvent>;

  request<T = Record<string, unknown>>(op: string, fields?: Record<string, unknown>, options?: { timeout?: number }): Promise<T>;

  ping(): Promise<{ ts: Ms }>;
  subscribe(room: Room, options?: { since?: number | null }): Promise<SubscribeResult>;
  unsubscribe(room: Room): Promise<{ room: Room }>;
  history(room: Room, options?: { before?: number | null; limit?: number }): Promise<HistoryResult>;
  post(room: Room, text: string, options?: { clientMsgId?: string; retries?: number; timeout?: number }): Promise<PostResult>;
  edit(room: Room, seq: number, text: string): Promise<EditResult>;
  delete(room: Room, seq: number): Promise<{ room: Room; seq: number; target: number }>;
  notifications(options?: { before?: number | null; limit?: number }): Promise<NotificationsResult>;
  notificationsRead(upTo: number): Promise<{ read_up_to: number; unread: number }>;
  read(room: Room, seq: number): Promise<{ room: Room; up_to: number; unread: number }>;
  conversations(
    role: "sales" | "purchases",
    options?: { before?: number | null; limit?: number },
  ): Promise<{ conversations: Conversation[]; more: boolean }>;
  typing(room: Room): Promise<boolean>;

  offersEnable(listing: string, enabled?: boolean): Promise<{ listing: string; offers_enabled: boolean }>;
  offerMake(listing: string, amount: number): Promise<Negotiation>;
  offerRespond(offer: string, action: "accept" | "decline" | "withdraw"): Promise<Negotiation>;
  offerRespond(offer: string, action: "counter", amount: number): Promise<Negotiation>;
  likers(listing: string, options?: { before?: Ms | null; limit?: number }): Promise<LikersResult>;
  offerToLikers(listing: string, amount: number, to?: "all" | string[]): Promise<OfferToLikersResult>;
  offers(options?: { listing?: string | null; state?: OfferState | null; limit?: number }): Promise<Negotiation[]>;

  block(user: string): Promise<{ user: string; blocked: true; changed: boolean }>;
  unblock(user: string): Promise<{ user: string; blocked: false; changed: boolean }>;
  blocks(): Promise<Array<{ user: string; since: Ms }>>;
  mute(room: Room): Promise<{ room: Room; muted: true; changed: boolean }>;
  unmute(room: Room): Promise<{ room: Room; muted: false; changed: boolean }>;
  mutes(): Promise<Array<{ room: Room; since: Ms }>>;
  report(room: Room, seq: number, reason: ReportReason, note?: string | null): Promise<{ report: string; reason: ReportReason; duplicate: boolean }>;
}

export type ReportReason = "spam" | "scam" | "off_platform" | "harassment" | "inappropriate" | "other";

export default ParleyClient;
