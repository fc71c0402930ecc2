import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signRequest } from "../src/sdk/signing.ts";
import { type FerryProcess, runFerry, startFerryProcess } from "./process.ts";

/** The CLI against a running `ferry serve`, as an operator uses it. */
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-cli-"));
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-cli-out-"));
const env = { FERRY_DATA_DIR: dataDir, DATABASE_URL: "", FERRY_ADMIN_PASSWORD: "cli-test-password" };
let ferry: FerryProcess;

beforeAll(async () => {
  ferry = await startFerryProcess(env);
});
afterAll(async () => {
  await ferry.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
  fs.rmSync(workDir, { recursive: true, force: true });
});

async function signedGet(clientId: string, keyFile: string, target: string) {
  const privateJwk = JSON.parse(fs.readFileSync(keyFile, "utf8"));
  const headers = await signRequest({ clientId, privateJwk, method: "GET", target });
  return fetch(`${ferry.url}${target}`, { headers });
}

describe("ferry CLI", () => {
  it("the first embedded start creates a demo client whose key signs requests", async () => {
    const keyFile = path.join(dataDir, "demo-client.private.jwk.json");
    expect(ferry.output()).toContain(keyFile);
    const response = await signedGet("demo", keyFile, "/v1/users");
    expect(response.status).toBe(200);
  });

  it("clients create: makes a key pair, registers the public half, writes the private one", async () => {
    const keyOut = path.join(workDir, "acme.jwk.json");
    const result = await runFerry(
      [
        "clients",
        "create",
        "--name",
        "Acme Payments",
        "--origin",
        "https://acme.example.com",
        "--key-out",
        keyOut,
        "--json",
        "--url",
        ferry.url,
      ],
      env,
    );
    expect(result.code, result.stderr).toBe(0);
    const printed = JSON.parse(result.stdout);
    expect(printed).toEqual({
      clientId: expect.stringMatching(/^acme-payments-[0-9a-f]{8}$/),
      privateKeyFile: keyOut,
    });
    expect(fs.statSync(keyOut).mode & 0o777).toBe(0o600);
    expect((await signedGet(printed.clientId, keyOut, "/v1/users")).status).toBe(200);
  });

  it("clients create --public-key registers a key the integrator holds", async () => {
    const first = JSON.parse(
      (
        await runFerry(
          [
            "clients",
            "create",
            "--name",
            "Keyed",
            "--json",
            "--url",
            ferry.url,
            "--key-out",
            path.join(workDir, "k1.json"),
          ],
          env,
        )
      ).stdout,
    );
    const privateJwk = JSON.parse(fs.readFileSync(first.privateKeyFile, "utf8"));
    const { d: _d, ...publicJwk } = privateJwk;
    const publicFile = path.join(workDir, "public.json");
    fs.writeFileSync(publicFile, JSON.stringify(publicJwk));
    // The same key for a second client is fine (each client is its own namespace of keys).
    const second = await runFerry(
      ["clients", "create", "--name", "Keyed Two", "--public-key", publicFile, "--json", "--url", ferry.url],
      env,
    );
    expect(second.code, second.stderr).toBe(0);
    const created = JSON.parse(second.stdout);
    expect(created.privateKeyFile).toBeUndefined();
    expect((await signedGet(created.clientId, first.privateKeyFile, "/v1/users")).status).toBe(200);
  });

  it("keys rotate: a new current key, the previous one still published", async () => {
    const before = (await (await fetch(`${ferry.url}/.well-known/jwks.json`)).json()) as {
      keys: { kid: string }[];
    };
    const result = await runFerry(["keys", "rotate", "--url", ferry.url], env);
    expect(result.code, result.stderr).toBe(0);
    const after = (await (await fetch(`${ferry.url}/.well-known/jwks.json`)).json()) as {
      keys: { kid: string; alg: string }[];
    };
    expect(after.keys).toHaveLength(2);
    expect(after.keys.map((k) => k.kid)).toContain(before.keys[0]?.kid);
    expect(after.keys.every((k) => k.alg === "RS512")).toBe(true);
    expect(result.stdout).toContain(after.keys[0]?.kid ?? "?");
  });

  it("says in one line what is wrong", async () => {
    const wrong = await runFerry(
      ["keys", "rotate", "--url", ferry.url, "--admin-password", "not-the-password"],
      env,
    );
    expect(wrong.code).toBe(1);
    expect(wrong.stderr.trim()).toMatch(/^ferry: POST \/admin\/keys\/rotate failed: 401/);
    const down = await runFerry(["keys", "rotate", "--url", "http://127.0.0.1:9"], env);
    expect(down.code).toBe(1);
    expect(down.stderr.trim()).toMatch(/^ferry: cannot reach Ferry/);
    const noName = await runFerry(["clients", "create", "--url", ferry.url], env);
    expect(noName.stderr.trim()).toBe("ferry: clients create needs --name");
  });
});
