import { afterAll, beforeAll, expect, it } from "vitest";
import { ADMIN_PASSWORD, basic, startTestApp, type TestApp } from "./harness.ts";

/**
 * Issue 23 (the platform admin's HTTP Basic password): guesses are limited per source address and
 * counted before they are weighed, so a burst gets no more than the limit; the lock stands against
 * the right password from that address, and does not reach the admin from anywhere else.
 */

const LIMIT = 10; // FERRY_ADMIN_MAX_FAILURES's default

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ settings: { adminMaxFailures: LIMIT } });
});
afterAll(() => t.close());

const call = (password: string, from: string) =>
  t.app.inject({
    method: "GET",
    url: "/admin/ledger/invariants",
    remoteAddress: from,
    headers: { authorization: basic("admin", password) },
  });

it("a burst of 60 guesses from one address: at most the limit weighed, the right one last refused, the lock stands", async () => {
  const from = "198.51.100.7";
  const responses = await Promise.all(
    Array.from({ length: 60 }, (_, i) => call(i === 59 ? ADMIN_PASSWORD : `wrong-${i}`, from)),
  );
  const statuses = responses.map((r) => r.statusCode);
  expect(statuses.filter((s) => s === 200)).toEqual([]);
  // 401: weighed and wrong; the wrong guess that filled the count answers 429 after being weighed.
  expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(LIMIT);
  expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(60 - LIMIT);
  const after = await call(ADMIN_PASSWORD, from);
  expect(after.statusCode).toBe(429);
  expect(Number(after.headers["retry-after"])).toBeGreaterThan(60);
  expect(after.json()).toMatchObject({ type: "RATE_LIMITED" });
  // Another address is not locked out: the admin still gets in.
  expect((await call(ADMIN_PASSWORD, "203.0.113.9")).statusCode).toBe(200);
});

it("one at a time: the limit minus one wrong, then the right one, gets in and gives the places back", async () => {
  const from = "198.51.100.8";
  for (let i = 0; i < LIMIT - 1; i++) expect((await call(`wrong-${i}`, from)).statusCode).toBe(401);
  // A fresh authenticator cache: the right password is weighed, not remembered.
  expect((await call(ADMIN_PASSWORD, from)).statusCode).toBe(200);
  // Its place given back: one more wrong one fills the count and locks.
  const last = await call("wrong-last", from);
  expect(last.statusCode).toBe(429);
  expect((await call(`${ADMIN_PASSWORD}x`, from)).statusCode).toBe(429);
});

it("IPv6: the addresses of one /64 count as one source (an IPv4-mapped address as its IPv4 one)", async () => {
  for (let i = 0; i < LIMIT; i++)
    expect((await call(`wrong-${i}`, `2001:db8:7:7::${(i + 1).toString(16)}`)).statusCode).toBeLessThan(500);
  // The /64 is locked, whatever address of it guesses next (429, unweighed); the next /64 is not.
  expect((await call("another-guess", "2001:db8:7:7:ffff::1")).statusCode).toBe(429);
  expect((await call("another-guess", "2001:db8:7:8::1")).statusCode).toBe(401);
  for (let i = 0; i < LIMIT; i++) await call(`wrong-${i}`, "::ffff:198.51.100.9");
  expect((await call("another-guess", "198.51.100.9")).statusCode).toBe(429);
});
