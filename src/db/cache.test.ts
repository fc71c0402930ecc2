import { describe, expect, it, vi } from "vitest";
import { createTestDatabase, postgresUrl } from "../../test/database.ts";
import {
  createClient,
  findActiveSigningKey,
  findClient,
  revokeSigningKey,
  updateClient,
} from "../modules/clients/service.ts";
import { ProcessCache } from "./cache.ts";
import { openDatabase } from "./database.ts";

describe("ProcessCache", () => {
  it("keeps what it loaded, and drops it when told", async () => {
    const cache = new ProcessCache();
    const load = vi.fn(async () => "v1");
    expect(await cache.get("t", "k", load)).toBe("v1");
    expect(await cache.get("t", "k", load)).toBe("v1");
    expect(load).toHaveBeenCalledTimes(1);
    cache.invalidatePayload(JSON.stringify(["t", "k"]));
    expect(await cache.get("t", "k", async () => "v2")).toBe("v2");
  });

  it("does not store a load that an invalidation overtook (it may have read the old row)", async () => {
    const cache = new ProcessCache();
    let finish: (value: string) => void = () => {};
    const slow = cache.get("t", "k", () => new Promise<string>((resolve) => (finish = resolve)));
    cache.invalidate("t", "k");
    finish("old");
    expect(await slow).toBe("old");
    expect(await cache.get("t", "k", async () => "new")).toBe("new");
  });

  it("shares one load among concurrent readers, and never stores undefined", async () => {
    const cache = new ProcessCache();
    const load = vi.fn(async () => undefined);
    await Promise.all([cache.get("t", "k", load), cache.get("t", "k", load)]);
    expect(load).toHaveBeenCalledTimes(1);
    await cache.get("t", "k", load);
    expect(load).toHaveBeenCalledTimes(2);
  });

  it("expires entries after its time to live", async () => {
    const cache = new ProcessCache(20);
    await cache.get("t", "k", async () => "v1");
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(await cache.get("t", "k", async () => "v2")).toBe("v2");
  });
});

describe.runIf(postgresUrl)("process caches across processes (PostgreSQL)", () => {
  it("a client changed and a key revoked by one process are seen by another at once", async () => {
    const first = await createTestDatabase();
    const second = await openDatabase({ databaseUrl: (first as { url?: string }).url, poolSize: 2 });
    try {
      const jwk = {
        kty: "EC",
        crv: "P-256",
        x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        y: "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
      };
      const client = await createClient(first.db, { name: "Cache", signingKeys: [jwk] });
      const [key] = (await first.db.selectFrom("client_signing_keys").select("kid").execute()).map(
        (r) => r.kid,
      );
      // The second process reads (and caches) both.
      expect((await findClient(second.db, client.id))?.status).toBe("ACTIVE");
      expect(await findActiveSigningKey(second.db, client.id, key ?? "")).toBeDefined();
      await updateClient(first.db, client.id, { status: "SUSPENDED" });
      await revokeSigningKey(first.db, client.id, key ?? "");
      await vi.waitFor(
        async () => {
          expect((await findClient(second.db, client.id))?.status).toBe("SUSPENDED");
          expect(await findActiveSigningKey(second.db, client.id, key ?? "")).toBeUndefined();
        },
        { timeout: 2000, interval: 20 },
      );
    } finally {
      await second.close();
      await first.close();
    }
  });
});
