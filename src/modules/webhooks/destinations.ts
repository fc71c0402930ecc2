import dns from "node:dns";
import http from "node:http";
import https from "node:https";
import { BlockList, isIP, type LookupFunction } from "node:net";

/**
 * Where a live client's webhook may not point: loopback, link-local, private and other non-public
 * addresses — otherwise a webhook URL turns Ferry into a probe of the network it runs in (cloud
 * metadata at 169.254.169.254, an admin port on 127.0.0.1). Sandbox clients may (tests and local
 * development run receivers on loopback), and an installation may allow it for everyone
 * (FERRY_WEBHOOK_ALLOW_PRIVATE, set once at start-up).
 */
const nonPublic = new BlockList();
for (const [network, prefix] of [
  ["0.0.0.0", 8], // "this network", 0.0.0.0
  ["10.0.0.0", 8], // RFC 1918
  ["100.64.0.0", 10], // carrier-grade NAT
  ["127.0.0.0", 8], // loopback
  ["169.254.0.0", 16], // link-local, cloud metadata
  ["172.16.0.0", 12], // RFC 1918
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.168.0.0", 16], // RFC 1918
  ["198.18.0.0", 15], // benchmarking
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, broadcast
] as const)
  nonPublic.addSubnet(network, prefix, "ipv4");
for (const [network, prefix] of [
  ["::", 128], // unspecified
  ["::1", 128], // loopback
  ["fc00::", 7], // unique local
  ["fe80::", 10], // link-local
  ["ff00::", 8], // multicast
] as const)
  nonPublic.addSubnet(network, prefix, "ipv6");

/** Whether an IP address (v4, v6, or v4-mapped v6) is not a public destination. */
export function isNonPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  // BlockList checks an IPv4-mapped IPv6 address (::ffff:127.0.0.1) against the IPv4 rules too.
  return nonPublic.check(address, family === 4 ? "ipv4" : "ipv6");
}

let installationAllowsPrivate = false;

/** The installation's FERRY_WEBHOOK_ALLOW_PRIVATE, applied at start-up (default: refused). */
export function allowPrivateWebhookDestinations(allow: boolean): void {
  installationAllowsPrivate = allow;
}

/** Whether a client in this mode must be kept to public destinations. */
export function mustBePublic(mode: "sandbox" | "live", allowPrivate = installationAllowsPrivate): boolean {
  return mode === "live" && !allowPrivate;
}

const REFUSAL = "must not point at a loopback, link-local or private address for a live client";

/**
 * Configuration-time check of a webhook URL (no DNS: a name is checked again, resolved, at every
 * delivery). Returns why it is refused, or undefined.
 */
export function privateDestinationRefusal(url: URL, mode: "sandbox" | "live"): string | undefined {
  return mustBePublic(mode) && namesNonPublicHost(url) ? REFUSAL : undefined;
}

/** A URL whose host is a non-public IP address or a localhost name (RFC 6761). */
function namesNonPublicHost(url: URL): boolean {
  const host = url.hostname
    .replace(/^\[|\]$/g, "")
    .replace(/\.$/, "")
    .toLowerCase();
  return host === "localhost" || host.endsWith(".localhost") || isNonPublicAddress(host);
}

/** A delivery refused because its destination is (or resolves to) a non-public address. */
export class DestinationRefusedError extends Error {
  constructor() {
    super(`the webhook URL ${REFUSAL}`);
    this.name = "DestinationRefusedError";
  }
}

/** A delivery without an answer in time. */
export class ReceiverTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms`);
    this.name = "ReceiverTimeoutError";
  }
}

type Lookup = (
  hostname: string,
  callback: (error: Error | null, addresses: { address: string; family: number }[]) => void,
) => void;

const systemLookup: Lookup = (hostname, callback) =>
  dns.lookup(hostname, { all: true }, (error, addresses) => callback(error, addresses ?? []));

/**
 * The socket's name lookup. With `publicOnly` it refuses names resolving to a non-public address;
 * the check happens when the connection is made, on the very addresses it connects to, so a name
 * that changes its answer between a check and the connection (DNS rebinding) gains nothing.
 */
function connectLookup(resolve: Lookup, publicOnly: boolean): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, (error, addresses) => {
      const first = addresses[0];
      if (error || !first) return callback(error ?? new Error(`no address for ${hostname}`), "", 0);
      if (publicOnly && addresses.some((a) => isNonPublicAddress(a.address)))
        return callback(new DestinationRefusedError(), "", 0);
      // net asks for every address when it may try several (autoSelectFamily).
      if (options.all) return callback(null, addresses);
      callback(null, first.address, first.family);
    });
  };
}

export interface ReceiverRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
  /** Keep to public addresses (a live client without FERRY_WEBHOOK_ALLOW_PRIVATE). */
  publicOnly: boolean;
  /** Name resolution (tests replace it); the system resolver otherwise. */
  lookup?: Lookup | undefined;
  /**
   * Connections kept alive between deliveries, shared only by requests that give the same value
   * (one client, with the same public-only rule): without it, a connection of its own per request.
   */
  connections?: string | undefined;
  /** Aborts the exchange (the caller gives up: shutdown, a lost lease); the call rejects with its reason. */
  signal?: AbortSignal | undefined;
}

/** Kept-alive connections per `connections` key and origin. */
const agents = new Map<string, http.Agent>();
const MAX_DRAINED_BYTES = 64 * 1024;

function agentFor(key: string, url: URL): http.Agent {
  const id = `${key}\u0000${url.origin}`;
  let agent = agents.get(id);
  if (agent) {
    agents.delete(id); // the most recently used last: the map's order is the eviction order
    agents.set(id, agent);
    return agent;
  }
  const options = { keepAlive: true, maxSockets: 64, maxFreeSockets: 64, timeout: 30_000 };
  agent = url.protocol === "https:" ? new https.Agent(options) : new http.Agent(options);
  // Past the cap, the least recently used idle pools are closed — never one with a request in
  // flight (another client's delivery is not cut because a new destination appeared).
  if (agents.size >= MAX_AGENTS)
    for (const [oldId, old] of agents) {
      if (agents.size < MAX_AGENTS) break;
      if (inUse(old)) continue;
      old.destroy();
      agents.delete(oldId);
    }
  agents.set(id, agent);
  return agent;
}

const MAX_AGENTS = 1000;

const inUse = (agent: http.Agent) =>
  [agent.sockets, agent.requests].some((byHost) =>
    Object.values(byHost).some((list) => (list?.length ?? 0) > 0),
  );

/**
 * Where a request connects and how it resolves names; undefined when the URL itself names a
 * non-public host and the request must keep to public ones (an IP address in the URL is
 * connected to without a lookup: checked here).
 */
function destinationOf(request: ReceiverRequest) {
  const url = new URL(request.url);
  if (request.publicOnly && namesNonPublicHost(url)) return undefined;
  const transport = url.protocol === "https:" ? https : http;
  const lookup =
    request.publicOnly || request.lookup
      ? connectLookup(request.lookup ?? systemLookup, request.publicOnly)
      : undefined;
  const options: http.RequestOptions = {
    method: "POST",
    // Pooled only per client and rule (`connections`): a socket connected for another client
    // (without the public-only check) is never reused.
    agent: request.connections === undefined ? false : agentFor(request.connections, url),
    headers: { ...request.headers, "content-length": String(Buffer.byteLength(request.body)) },
    ...(lookup ? { lookup } : {}),
  };
  return { url, transport, options };
}

/**
 * POSTs a webhook body and answers the receiver's status code. The response body is never read
 * (nothing of it is kept or shown back), redirects are not followed, and with `publicOnly` the
 * destination must be public both as written and as resolved.
 */
export function postToReceiver(request: ReceiverRequest): Promise<number> {
  const target = destinationOf(request);
  if (!target) return Promise.reject(new DestinationRefusedError());
  if (request.signal?.aborted) return Promise.reject(abortReason(request.signal));
  const { url, transport, options } = target;
  return new Promise<number>((resolve, reject) => {
    const onAbort = () => outgoing.destroy(abortReason(request.signal));
    const outgoing = transport.request(url, options, (response) => {
      request.signal?.removeEventListener("abort", onAbort);
      resolve(response.statusCode ?? 0);
      if (request.connections === undefined) {
        response.destroy(); // the body is never read
        return;
      }
      // Drained unread so that the connection can serve the next delivery; a receiver that
      // answers with more than a small body loses the connection instead.
      let drained = 0;
      response.on("data", (chunk: Buffer) => {
        drained += chunk.length;
        if (drained > MAX_DRAINED_BYTES) response.destroy();
      });
      response.on("error", () => {});
    });
    const timer = setTimeout(
      () => outgoing.destroy(new ReceiverTimeoutError(request.timeoutMs)),
      request.timeoutMs,
    );
    request.signal?.addEventListener("abort", onAbort, { once: true });
    outgoing.on("error", reject);
    outgoing.on("close", () => {
      clearTimeout(timer);
      request.signal?.removeEventListener("abort", onAbort);
    });
    outgoing.end(request.body);
  });
}

/** An answer whose body Ferry reads (the 1-Click operator's callbacks), bounded in size. */
export interface ReceiverAnswer {
  status: number;
  contentType: string;
  body: string;
}

/** A body over `maxBodyBytes`: the answer is refused as a whole. */
export class ReceiverAnswerTooLargeError extends Error {
  constructor(maxBytes: number) {
    super(`the answer is larger than ${maxBytes} bytes`);
    this.name = "ReceiverAnswerTooLargeError";
  }
}

/**
 * POSTs to a receiver that answers with a body Ferry needs (an operator's callback): the same
 * destination rules as `postToReceiver` (public-only for live clients, checked on the addresses
 * connected to, no redirects followed), one deadline on the whole exchange (connecting, the status
 * line and headers, every byte of the body: a receiver dripping a byte a second fails at the
 * deadline), and at most `maxBodyBytes` of answer: a larger one (declared or sent) fails the call
 * and its connection is destroyed. The promise settles exactly once on every path — an answer,
 * a timeout, too large, an aborted or malformed exchange, or `signal` (the caller giving up).
 */
export function postForAnswer(
  request: ReceiverRequest & { maxBodyBytes: number; signal?: AbortSignal | undefined },
): Promise<ReceiverAnswer> {
  const target = destinationOf(request);
  if (!target) return Promise.reject(new DestinationRefusedError());
  if (request.signal?.aborted) return Promise.reject(abortReason(request.signal));
  const { url, transport, options } = target;
  return new Promise<ReceiverAnswer>((resolve, reject) => {
    let settled = false;
    const onAbort = () => fail(abortReason(request.signal));
    // Every way out goes through here: the first outcome wins, the timer and listener go, and
    // on failure the socket is destroyed (a half-read answer never returns to the pool).
    const settle = (answer: ReceiverAnswer | undefined, error?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request.signal?.removeEventListener("abort", onAbort);
      if (answer) resolve(answer);
      else {
        outgoing.destroy();
        reject(error);
      }
    };
    const fail = (error: unknown) => settle(undefined, error);
    const outgoing = transport.request(url, options, (response) => {
      const declared = Number(response.headers["content-length"] ?? 0);
      if (declared > request.maxBodyBytes) {
        response.destroy();
        fail(new ReceiverAnswerTooLargeError(request.maxBodyBytes));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      response.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > request.maxBodyBytes) {
          response.destroy();
          fail(new ReceiverAnswerTooLargeError(request.maxBodyBytes));
          return;
        }
        chunks.push(chunk);
      });
      response.on("end", () =>
        settle({
          status: response.statusCode ?? 0,
          contentType: String(response.headers["content-type"] ?? ""),
          body: Buffer.concat(chunks).toString("utf8"),
        }),
      );
      response.on("error", fail);
      // Closed without its end (the receiver hung up mid-body): no answer.
      response.on("close", () => fail(new Error("the answer was cut off")));
    });
    const timer = setTimeout(() => fail(new ReceiverTimeoutError(request.timeoutMs)), request.timeoutMs);
    request.signal?.addEventListener("abort", onAbort, { once: true });
    outgoing.on("error", fail);
    outgoing.on("close", () => {
      // Nothing else settled it (no response at all): the exchange ended without an answer.
      if (!settled) setImmediate(() => fail(new Error("the connection closed without an answer")));
    });
    outgoing.end(request.body);
  });
}

function abortReason(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new Error("the call was abandoned");
}
