import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import {
  postForAnswer,
  postToReceiver,
  type ReceiverAnswer,
  ReceiverAnswerTooLargeError,
  ReceiverTimeoutError,
} from "./destinations.ts";

/**
 * An answer Ferry reads (an operator's callback) under every way a receiver can misbehave: the
 * promise settles every time, within the deadline on the whole exchange (connect, status line,
 * headers, body), and an answer over the size cap fails the call — never a promise left pending.
 */

const servers: (http.Server | net.Server)[] = [];
afterAll(async () => {
  for (const server of servers) {
    if (server instanceof http.Server) server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

const timers = new Set<NodeJS.Timeout>();
afterAll(() => {
  for (const timer of timers) clearInterval(timer);
});

/**
 * Writes `text` one byte every `everyMs` to a socket or response, then `filler` bytes, until it
 * closes (a receiver that keeps the exchange alive without ever finishing it).
 */
function drip(out: { write(chunk: string): boolean; destroyed: boolean }, everyMs: number, text = "") {
  let sent = 0;
  const timer = setInterval(() => {
    if (out.destroyed) {
      clearInterval(timer);
      timers.delete(timer);
      return;
    }
    out.write(text[sent++] ?? "a");
  }, everyMs);
  timers.add(timer);
}

async function listen<S extends http.Server | net.Server>(server: S): Promise<string> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/transfer`;
}

/** An HTTP receiver answering each request with `answer`. */
const httpReceiver = (answer: (req: http.IncomingMessage, res: http.ServerResponse) => void) =>
  listen(
    http.createServer((req, res) => {
      req.resume();
      req.on("end", () => answer(req, res));
    }),
  );

/** A raw TCP receiver (to misbehave below HTTP: a status line dripped byte by byte). */
const tcpReceiver = (onSocket: (socket: net.Socket) => void) =>
  listen(
    net.createServer((socket) => {
      socket.on("error", () => {});
      onSocket(socket);
    }),
  );

const MAX = 64 * 1024;
const post = (url: string, options: { timeoutMs?: number; pooled?: boolean } = {}) =>
  postForAnswer({
    url,
    headers: { "content-type": "application/json" },
    body: "{}",
    timeoutMs: options.timeoutMs ?? 800,
    publicOnly: false,
    maxBodyBytes: MAX,
    ...(options.pooled ? { connections: `test:${url}` } : {}),
  });

/** How the call ended and after how long: a promise that does not settle within `limitMs` is "pending". */
async function outcome(call: Promise<ReceiverAnswer>, limitMs = 5000) {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const pending = new Promise<"pending">((resolve) => {
    timer = setTimeout(() => resolve("pending"), limitMs);
  });
  const settled = await Promise.race([
    call.then(
      (answer) => ({ answer }),
      (error: unknown) => ({ error }),
    ),
    pending,
  ]);
  clearTimeout(timer);
  return { settled, ms: Date.now() - started };
}

/** A status line and a header that never ends, byte by byte. */
const DRIPPED_HEAD = "HTTP/1.1 200 OK\r\nx-slow: ";

const TEN_MB = "x".repeat(10 * 1024 * 1024);

describe.each([
  { pooled: false, label: "a connection of its own" },
  { pooled: true, label: "kept-alive connections (as callbacks use)" },
])("postForAnswer over $label", ({ pooled }) => {
  it("answers a well-behaved receiver's status, type and body", async () => {
    const url = await httpReceiver((_req, res) =>
      res.writeHead(200, { "content-type": "application/json" }).end('{"success":true}'),
    );
    const { settled } = await outcome(post(url, { pooled }));
    expect(settled).toEqual({
      answer: { status: 200, contentType: "application/json", body: '{"success":true}' },
    });
  });

  it("fails a 10 MB answer as too large, at once, and the connection is closed", async () => {
    let closed = false;
    const url = await httpReceiver((req, res) => {
      req.socket.on("close", () => {
        closed = true;
      });
      res.writeHead(200, { "content-type": "application/json" }).end(TEN_MB);
    });
    const { settled, ms } = await outcome(post(url, { pooled, timeoutMs: 4000 }));
    expect(settled).toMatchObject({ error: expect.any(ReceiverAnswerTooLargeError) });
    expect(ms).toBeLessThan(3000);
    await expect.poll(() => closed, { timeout: 2000 }).toBe(true);
  });

  it("fails a 10 MB answer sent without a length (chunked) as too large", async () => {
    const url = await httpReceiver((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      for (let i = 0; i < 10; i++) res.write(TEN_MB.slice(0, 1024 * 1024));
      res.end();
    });
    const { settled } = await outcome(post(url, { pooled, timeoutMs: 4000 }));
    expect(settled).toMatchObject({ error: expect.any(ReceiverAnswerTooLargeError) });
  });

  it("fails a body dripped one byte at a time at the deadline", async () => {
    const url = await httpReceiver((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write("{");
      drip(res, 100, " ");
    });
    const { settled, ms } = await outcome(post(url, { pooled, timeoutMs: 800 }));
    expect(settled).toMatchObject({ error: expect.any(ReceiverTimeoutError) });
    expect(ms).toBeGreaterThanOrEqual(700);
    expect(ms).toBeLessThan(2000);
  });

  it("fails a status line dripped one byte at a time at the deadline", async () => {
    const url = await tcpReceiver((socket) => {
      socket.once("data", () => drip(socket, 100, DRIPPED_HEAD));
    });
    const { settled, ms } = await outcome(post(url, { pooled, timeoutMs: 800 }));
    expect(settled).toMatchObject({ error: expect.any(ReceiverTimeoutError) });
    expect(ms).toBeLessThan(2000);
  });

  it("fails a receiver that never answers at the deadline", async () => {
    const url = await httpReceiver(() => {});
    const { settled, ms } = await outcome(post(url, { pooled, timeoutMs: 500 }));
    expect(settled).toMatchObject({ error: expect.any(ReceiverTimeoutError) });
    expect(ms).toBeLessThan(1500);
  });

  it("fails an answer cut off in the middle of its body", async () => {
    const url = await tcpReceiver((socket) => {
      socket.once("data", () =>
        socket.end("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"),
      );
    });
    const { settled, ms } = await outcome(post(url, { pooled, timeoutMs: 2000 }));
    expect(settled).toHaveProperty("error");
    expect(ms).toBeLessThan(1500);
  });

  it("fails a malformed status line", async () => {
    const url = await tcpReceiver((socket) => {
      socket.once("data", () => socket.end("NOT HTTP AT ALL\r\n\r\n"));
    });
    const { settled } = await outcome(post(url, { pooled, timeoutMs: 2000 }));
    expect(settled).toHaveProperty("error");
  });

  it("fails at once when its caller gives up (the signal aborts), the connection destroyed", async () => {
    let closed = false;
    const url = await httpReceiver((req) => {
      req.socket.on("close", () => {
        closed = true;
      });
    });
    const giveUp = new AbortController();
    setTimeout(() => giveUp.abort(new Error("the step's deadline")), 200);
    const call = postForAnswer({
      url,
      headers: {},
      body: "{}",
      timeoutMs: 5000,
      publicOnly: false,
      maxBodyBytes: MAX,
      signal: giveUp.signal,
      ...(pooled ? { connections: `test:${url}` } : {}),
    });
    const { settled, ms } = await outcome(call);
    expect(settled).toMatchObject({ error: { message: "the step's deadline" } });
    expect(ms).toBeLessThan(1000);
    await expect.poll(() => closed, { timeout: 2000 }).toBe(true);
  });

  it("fails a refused connection", async () => {
    const url = await tcpReceiver(() => {});
    const port = new URL(url).port;
    const server = servers.pop() as net.Server;
    await new Promise((resolve) => server.close(resolve));
    const { settled } = await outcome(post(`http://127.0.0.1:${port}/api/transfer`, { pooled }));
    expect(settled).toHaveProperty("error");
  });
});

describe("postToReceiver", () => {
  it("fails a status line dripped one byte at a time at the deadline", async () => {
    const url = await tcpReceiver((socket) => {
      socket.once("data", () => drip(socket, 100, DRIPPED_HEAD));
    });
    const started = Date.now();
    await expect(
      postToReceiver({ url, headers: {}, body: "{}", timeoutMs: 600, publicOnly: false }),
    ).rejects.toBeInstanceOf(ReceiverTimeoutError);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe("kept-alive connection pools", () => {
  it("past 1,000 pools the idle ones close, never one with a delivery in flight", async () => {
    let release: (() => void) | undefined;
    const url = await httpReceiver((req, res) => {
      if (req.url?.includes("slow")) release = () => res.writeHead(204).end();
      else res.writeHead(204).end();
    });
    const send = (connections: string, path = "") =>
      postToReceiver({
        url: url + path,
        headers: { "content-type": "application/json" },
        body: "{}",
        timeoutMs: 20_000,
        publicOnly: false,
        connections,
      });
    // One client's delivery held by its receiver, then 1,100 other pools made (and used) meanwhile.
    const held = send("client-held", "?slow");
    for (let i = 0; i < 1100; i += 50)
      await Promise.all(Array.from({ length: 50 }, (_, j) => send(`client-${i + j}`)));
    for (let i = 0; i < 50 && !release; i++) await new Promise((r) => setTimeout(r, 20));
    release?.();
    // Before: the 1,001st pool destroyed every pool, the held delivery's socket with it.
    expect(await held).toBe(204);
  }, 30_000);
});
