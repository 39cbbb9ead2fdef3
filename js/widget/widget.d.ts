/**
 * Parley's chat widget: types of `widget.js` (the package's `parley-client/widget`).
 * The widget is plain DOM on top of `ParleyClient`; see README.md.
 */

import type { ClientOptions, ParleyClient, ParleyError, TokenSource } from "../parley.js";

/** A listing as the host page knows it: the protocol has no op that reads one. */
export interface CatalogListing {
  id: string;
  title: string;
  price: { amount: number; currency: string };
  photo_url?: string;
  seller_id: string;
  offers_enabled?: boolean;
  status?: string;
}

/** What the host page knows of an order conversation, shown above its messages. */
export interface ConversationInfo {
  title?: string;
  order_id?: string;
  photo_url?: string;
  counterpart?: { id: string; name?: string };
}

export interface WidgetOptions {
  /** The hub's WebSocket URL, e.g. `wss://chat.example.com/` (or pass a connected `client`). */
  url?: string;
  /** The member's JWT, or a function returning one (called on every reconnect). */
  token?: TokenSource;
  client?: ParleyClient;
  /** `fr-CA` or `en` (any French is fr-CA); default: the member's own. */
  locale?: string;
  catalog?: CatalogListing[];
  users?: { id: string; name: string }[];
  /** A listing id to open first. */
  listing?: string;
  /** An order room (`order:<id>`) to open first, with what the page knows of it. */
  room?: string;
  info?: ConversationInfo;
  /** Show `catalog` as a screen of its own: the first one, and where "Back" ends. */
  showCatalog?: boolean;
  /** The app's address, for the "Open the app" link shown when the widget cannot start. */
  appUrl?: string;
  clientOptions?: ClientOptions;
  /** Called once the widget shows, also after "Try again". */
  onStarted?: (widget: ParleyWidget) => void;
}

/** Why a widget could not start, as shown to the member. */
export type StartProblem = "expired" | "refused" | "offline" | "unavailable";

/** `ParleyWidget.start` rejects with the error, after showing the problem in `root`. */
export type StartError = ParleyError & { problem: StartProblem };

export declare class ParleyWidget {
  /** Connect and show the widget in `root`; rejects with a `StartError` after showing it. */
  static start(root: HTMLElement, options?: WidgetOptions): Promise<ParleyWidget>;
  readonly client: ParleyClient;
  locale: "fr-CA" | "en";
  setLocale(locale: string): void;
  openListing(id: string): Promise<void>;
  openOrders(role?: "sales" | "purchases"): Promise<void>;
  openConversation(room: string, info?: ConversationInfo): Promise<void>;
  /** Members this member blocks: their public comments show hidden. */
  readonly blocked: Set<string>;
  /** Block or unblock a member (the `block`/`unblock` ops), then show the screen again. */
  setBlocked(userId: string, blocked: boolean): Promise<void>;
  /** Close the connection and stop the widget's timers. */
  destroy(): void;
}

/** Why a start failed, from its error. */
export declare function startProblem(error: unknown): StartProblem;

/** The WebSocket URL of the page's own origin. */
export declare function sameOriginWebSocket(location?: Location): string;

/** Open the one conversation of an e-mail link's landing page; null on another page. */
export declare function startFromLandingPage(
  doc?: Document,
  options?: { root?: HTMLElement; clientOptions?: ClientOptions },
): Promise<ParleyWidget | null>;
