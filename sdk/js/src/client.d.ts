// Declarations of client.js (written by hand: the API); the frame types it uses come from
// protocol.d.ts, generated from the gateway's JSON Schema.
import type {
  ErrorCode,
  ErrorFrame,
  EventMap,
  EventType,
  MessageFields,
  MessageType,
  Welcome,
} from "./protocol.js";

/** Any frame the server sends: a typed event, or one this version does not know yet. */
export type AnyServerFrame = EventMap[EventType] | ({ type: string; seq?: number; id?: unknown } & Record<string, unknown>);

export type ConnectionState = "connecting" | "online" | "reconnecting" | "offline";

/** Lifecycle events the client itself emits besides the server's frames. */
export interface LifecycleMap {
  /** a new session (first connect, or after a failed resume): reload what you show */
  welcome: Welcome;
  /** the session was resumed: missed frames were replayed before this */
  resumed: EventMap["resumed"];
  /** the resume failed: the client holds a fresh session (then `welcome`) */
  fresh: ErrorFrame;
  /** the identity was revoked (close 4403): no reconnect; sign in again */
  revoked: { type: "revoked"; reason: string; code?: number };
  error: ErrorFrame;
}

export type Handled = Omit<EventMap, keyof LifecycleMap> & LifecycleMap;

export declare const RECONNECT: Readonly<{
  baseMs: number;
  capMs: number;
  fastWindowMs: number;
  slowCapMs: number;
  hiddenCapMs: number;
  busyCapMs: number;
}>;

export declare const CLOSE_REVOKED: 4403;

export declare function backoffDelay(attempt: number, schedule: { baseMs: number; capMs: number }, rand?: () => number): number;

export declare class ProtocolError extends Error {
  constructor(frame: { code: string; message?: string });
  code: ErrorCode | "timeout" | "revoked" | "resume_failed" | string;
  frame: { code: string; message?: string };
}

/** A WebSocket class: the browser's, Node's (22+, or 20 with --experimental-websocket), or
 * any with the same constructor and on* handlers (the `ws` package, a test fake). */
export interface WebSocketLike {
  readyState: number;
  onopen: ((ev?: unknown) => void) | null;
  onmessage: ((ev: { data: string }) => void) | null;
  onclose: ((ev: { code: number; reason?: string }) => void) | null;
  onerror: ((ev?: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export interface ClientOptions {
  /** WebSocket URLs of gateways, tried in turn (default: this page's origin /ws) */
  urls?: string[];
  /** called before each hello; `refresh` after the gateway refused the last token */
  getToken: (opts: { refresh: boolean }) => Promise<string>;
  requestTimeoutMs?: number;
  connectTimeoutMs?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  fastWindowMs?: number;
  slowBackoffMaxMs?: number;
  hiddenBackoffMaxMs?: number;
  busyBackoffMaxMs?: number;
  watchBrowser?: boolean;
  WebSocket?: new (url: string) => WebSocketLike;
}

export declare class Client {
  constructor(opts: ClientOptions);
  readonly state: ConnectionState;
  readonly session: string | null;
  readonly lastSeq: number;
  readonly welcome: Welcome | null;
  readonly user: string | undefined;
  readonly role: string | undefined;
  stats: { connects: number; resumes: number; fresh: number; wakes: number; probes: number; delays: number[] };

  /** Typed: `on("message", (m) => m.text)`; `"*"` gets every frame. Returns an unsubscribe. */
  on<K extends keyof Handled>(type: K, cb: (frame: Handled[K]) => void): () => void;
  on(type: "*", cb: (frame: AnyServerFrame) => void): () => void;
  on(type: string, cb: (frame: AnyServerFrame) => void): () => void;
  onState(cb: (state: ConnectionState) => void): () => void;

  /** Resolves after the first welcome. */
  connect(): Promise<Welcome>;
  close(): void;
  reauth(token: string): Promise<EventMap["ack"] | null>;
  dropSocket(): void;
  wake(reason?: string): void;

  /** A request and its direct reply (rejects with ProtocolError on an `error` reply). */
  request<K extends MessageType>(type: K, fields?: MessageFields<K>, opts?: { timeoutMs?: number }): Promise<AnyServerFrame>;
  /** Fire and forget; returns the frame's id. */
  send<K extends MessageType>(type: K, fields?: MessageFields<K>): number;
}

export declare function defaultUrl(): string;
export declare function allowedGatewayOrigins(): string[];
export declare function gatewayUrls(): string[];
export declare function devTokenSource(role: string, opts?: { defaultUser?: string; name?: string; room?: string }): (opts?: { refresh?: boolean }) => Promise<string>;
export declare function authMode(): "dev" | "signin";
export declare function loginUrl(reason?: string): string;
export declare function signInTokenSource(roles: string[], opts?: { room?: string }): (opts?: { refresh?: boolean }) => Promise<string>;
export declare function staffTokenSource(role: string, opts?: { room?: string; defaultUser?: string; name?: string }): (opts?: { refresh?: boolean }) => Promise<string>;
