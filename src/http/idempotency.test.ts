import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { startTestApp, type TestApp } from "../../test/harness.ts";
import { ApiError } from "./errors.ts";
import { idempotency } from "./idempotency.ts";

/**
 * The idempotency plumbing on a route of its own: the handler counts its runs, and can be made to
 * wait (to catch a second request while the first runs) or to fail.
 */
let t: TestApp;
let runs = 0;
let gate: Promise<void> | undefined;

beforeAll(async () => {
  t = await startTestApp((app, database) => {
    const hooks = idempotency(
      database.db,
      {
        header: "x-request-id",
        required: true,
        scope: (request) => String(request.headers["x-client-id"] ?? "none"),
      },
      { ttlHours: 24 },
    );
    app.withTypeProvider<ZodTypeProvider>().post(
      "/test/payments",
      {
        preHandler: hooks.preHandler,
        onSend: hooks.onSend,
        schema: {
          body: z
            .object({ amount: z.string(), fail: z.enum(["500", "402", "409-retry"]).optional() })
            .strict(),
        },
      },
      async (request, reply) => {
        runs++;
        if (gate) await gate;
        if (request.body.fail === "500") throw new Error("provider exploded");
        if (request.body.fail === "402") throw new ApiError("PAYMENT_FAILED", "declined");
        if (request.body.fail === "409-retry") throw new ApiError("CONFLICT", "busy", { retryable: true });
        reply.code(201).header("location", `/test/payments/${runs}`);
        return { paymentNumber: runs, amount: request.body.amount };
      },
    );
  });
});
afterAll(async () => {
  await t.close();
});

const post = (requestId: string | undefined, body: unknown, clientId = "acme") =>
  t.app.inject({
    method: "POST",
    url: "/test/payments",
    headers: {
      "content-type": "application/json",
      "x-client-id": clientId,
      ...(requestId ? { "x-request-id": requestId } : {}),
    },
    payload: JSON.stringify(body),
  });

describe("idempotency", () => {
  it("replays the first response for the same id and body, without running again", async () => {
    const before = runs;
    const first = await post("req-1", { amount: "10.00" });
    const second = await post("req-1", { amount: "10.00" });
    expect(first.statusCode).toBe(201);
    expect(second.statusCode).toBe(201);
    expect(second.body).toBe(first.body);
    expect(second.headers["idempotent-replayed"]).toBe("true");
    expect(second.headers.location).toBe(first.headers.location);
    expect(first.headers["idempotent-replayed"]).toBeUndefined();
    expect(runs - before).toBe(1);
  });

  it("answers 409 to the same id with a different body", async () => {
    await post("req-2", { amount: "10.00" });
    const other = await post("req-2", { amount: "10.01" });
    expect(other.statusCode).toBe(409);
    expect(other.json()).toMatchObject({ type: "IDEMPOTENCY_KEY_REUSED", code: 4010 });
    expect(other.json().retryable).toBeUndefined();
  });

  it("answers 409 retryable while the first request is still running", async () => {
    let open = () => {};
    gate = new Promise((resolve) => {
      open = resolve;
    });
    const first = post("req-3", { amount: "5.00" });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const second = await post("req-3", { amount: "5.00" });
    open();
    gate = undefined;
    expect(second.statusCode).toBe(409);
    expect(second.json()).toMatchObject({ type: "REQUEST_IN_PROGRESS", retryable: true });
    expect((await first).statusCode).toBe(201);
    const third = await post("req-3", { amount: "5.00" });
    expect(third.headers["idempotent-replayed"]).toBe("true");
  });

  it("of 20 identical requests at once, runs one; the others replay it or are told to retry", async () => {
    const before = runs;
    const responses = await Promise.all(
      Array.from({ length: 20 }, () => post("req-burst", { amount: "1.00" })),
    );
    expect(runs - before).toBe(1);
    const created = responses.filter((r) => r.statusCode === 201);
    const busy = responses.filter((r) => r.statusCode === 409 && r.json().retryable === true);
    expect(created.length + busy.length).toBe(20);
    expect(created.filter((r) => r.headers["idempotent-replayed"] !== "true")).toHaveLength(1);
  });

  it("stores a 4xx outcome, but releases the id after a 5xx or a retryable 409", async () => {
    const declined = await post("req-4", { amount: "1.00", fail: "402" });
    const declinedAgain = await post("req-4", { amount: "1.00", fail: "402" });
    expect(declined.statusCode).toBe(402);
    expect(declinedAgain.headers["idempotent-replayed"]).toBe("true");

    for (const fail of ["500", "409-retry"]) {
      const before = runs;
      const failed = await post(`req-5-${fail}`, { amount: "1.00", fail });
      const retried = await post(`req-5-${fail}`, { amount: "1.00", fail });
      expect(failed.statusCode).toBeGreaterThanOrEqual(409);
      expect(retried.headers["idempotent-replayed"]).toBeUndefined();
      expect(runs - before).toBe(2);
    }
  });

  it("keeps clients' ids apart", async () => {
    const a = await post("req-6", { amount: "1.00" }, "acme");
    const b = await post("req-6", { amount: "2.00" }, "globex");
    expect(a.statusCode).toBe(201);
    expect(b.statusCode).toBe(201);
    expect(b.json().amount).toBe("2.00");
  });

  it("requires a well-formed id", async () => {
    for (const id of [undefined, "no", "has space", "x".repeat(256), "ünï"]) {
      const response = await post(id, { amount: "1.00" });
      expect(response.statusCode, String(id)).toBe(400);
      expect(response.json()).toMatchObject({ type: "INVALID_REQUEST", errors: [{ field: "x-request-id" }] });
    }
  });
});
