import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { exportJWK, generateKeyPair, type JWK } from "jose";
import { DataDirInUseError, openDatabase } from "./db/database.ts";
import { migrate } from "./db/migrate.ts";
import { exitWith, loadConfigOrExit, serve } from "./main.ts";
import { generatePassword, setAdminPassword } from "./modules/admins/service.ts";

const usage = `Usage: ferry <command>

Commands:
  serve                          start the server (the default)
  migrate                        apply database migrations and exit
  admin password [--password P]  reset the platform admin's password (generated and printed
                                 when --password is not given); on the embedded database,
                                 stop the server first
  clients create --name NAME [--mode sandbox|live] [--public-key FILE] [--webhook-url URL]
                 [--webhook-key FILE] [--origin URL]... [--key-out FILE] [--json]
                                 create a client through the running server; without
                                 --public-key, a key pair is made and the private JWK written
                                 to a file (--key-out, default ./<clientId>.private.jwk.json)
  keys rotate                    rotate Ferry's webhook signing key through the running server

Commands that talk to the running server use --url (default FERRY_URL, or this machine's
PORT) and the admin password from --admin-password or FERRY_ADMIN_PASSWORD.

Configuration comes from the environment: see docs/operations.md.`;

async function openConfiguredDatabase() {
  const config = loadConfigOrExit();
  try {
    return await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 2 });
  } catch (error) {
    if (error instanceof DataDirInUseError) exitWith(error.message);
    throw error;
  }
}

interface Server {
  url: string;
  password: string;
}

function serverOf(values: { url?: string | undefined; "admin-password"?: string | undefined }): Server {
  const password = values["admin-password"] ?? process.env.FERRY_ADMIN_PASSWORD;
  if (!password) exitWith("the admin password is needed: pass --admin-password or set FERRY_ADMIN_PASSWORD");
  const url = values.url ?? process.env.FERRY_URL ?? `http://127.0.0.1:${process.env.PORT || 3000}`;
  return { url: url.replace(/\/$/, ""), password };
}

async function adminRequest(server: Server, method: string, path: string, body?: unknown): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(`${server.url}${path}`, {
      method,
      headers: {
        authorization: `Basic ${Buffer.from(`admin:${server.password}`).toString("base64")}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    exitWith(`cannot reach Ferry at ${server.url}: is it running? (set --url or FERRY_URL)`);
  }
  const text = await response.text();
  if (!response.ok) {
    let message = text;
    try {
      message = (JSON.parse(text) as { message?: string }).message ?? text;
    } catch {
      // not JSON
    }
    exitWith(`${method} ${path} failed: ${response.status} ${message}`);
  }
  return JSON.parse(text);
}

function readJson(file: string, what: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (error) {
    exitWith(`cannot read ${what} from ${file}: ${(error as Error).message}`);
  }
}

async function createClientCommand(options: {
  name: string;
  mode: string | undefined;
  publicKeyFile: string | undefined;
  webhookUrl: string | undefined;
  webhookKeyFile: string | undefined;
  origins: string[];
  keyOut: string | undefined;
  json: boolean;
  server: Server;
}) {
  let privateJwk: JWK | undefined;
  let publicJwk: unknown;
  if (options.publicKeyFile) {
    publicJwk = readJson(options.publicKeyFile, "the public key");
  } else {
    const pair = await generateKeyPair("ES256", { extractable: true });
    publicJwk = await exportJWK(pair.publicKey);
    privateJwk = await exportJWK(pair.privateKey);
  }
  const created = (await adminRequest(options.server, "POST", "/admin/clients", {
    name: options.name,
    ...(options.mode ? { mode: options.mode } : {}),
    signingKeys: [publicJwk],
    ...(options.webhookUrl ? { webhookUrl: options.webhookUrl } : {}),
    ...(options.webhookKeyFile
      ? { webhookEncryptionKey: readJson(options.webhookKeyFile, "the webhook key") }
      : {}),
    ...(options.origins.length > 0 ? { allowedOrigins: options.origins } : {}),
  })) as { clientId: string };
  let privateKeyFile: string | undefined;
  if (privateJwk) {
    privateKeyFile = path.resolve(options.keyOut ?? `${created.clientId}.private.jwk.json`);
    fs.writeFileSync(privateKeyFile, `${JSON.stringify(privateJwk, null, 2)}\n`, { mode: 0o600 });
  }
  if (options.json) {
    process.stdout.write(
      `${JSON.stringify({ clientId: created.clientId, ...(privateKeyFile ? { privateKeyFile } : {}) })}\n`,
    );
  } else {
    process.stdout.write(
      `client ${created.clientId} created${privateKeyFile ? `; its private signing key is in ${privateKeyFile}` : ""}\n`,
    );
  }
}

async function main(argv: string[]) {
  const [command = "serve", ...rest] = argv;
  switch (command) {
    case "serve":
      return serve();
    case "migrate": {
      const database = await openConfiguredDatabase();
      try {
        const result = await migrate(database);
        process.stdout.write(
          result.applied.length > 0
            ? `applied ${result.applied.join(", ")} (${result.total} migrations in all)\n`
            : `up to date (${result.total} migrations)\n`,
        );
      } finally {
        await database.close();
      }
      return;
    }
    case "admin": {
      const { positionals, values } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { password: { type: "string" } },
      });
      if (positionals[0] !== "password")
        exitWith(`unknown admin command "${positionals[0] ?? ""}"\n\n${usage}`);
      const password = values.password ?? generatePassword();
      if (password.length < 12) exitWith("the password must be at least 12 characters");
      const database = await openConfiguredDatabase();
      try {
        await migrate(database);
        await setAdminPassword(database.db, password);
      } finally {
        await database.close();
      }
      process.stdout.write(
        values.password ? "the admin password was changed\n" : `the admin password is now: ${password}\n`,
      );
      return;
    }
    case "clients": {
      const { positionals, values } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
          name: { type: "string" },
          mode: { type: "string" },
          "public-key": { type: "string" },
          "webhook-url": { type: "string" },
          "webhook-key": { type: "string" },
          origin: { type: "string", multiple: true },
          "key-out": { type: "string" },
          json: { type: "boolean", default: false },
          url: { type: "string" },
          "admin-password": { type: "string" },
        },
      });
      if (positionals[0] !== "create")
        exitWith(`unknown clients command "${positionals[0] ?? ""}"\n\n${usage}`);
      if (!values.name) exitWith("clients create needs --name");
      return createClientCommand({
        name: values.name,
        mode: values.mode,
        publicKeyFile: values["public-key"],
        webhookUrl: values["webhook-url"],
        webhookKeyFile: values["webhook-key"],
        origins: values.origin ?? [],
        keyOut: values["key-out"],
        json: values.json ?? false,
        server: serverOf(values),
      });
    }
    case "keys": {
      const { positionals, values } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { url: { type: "string" }, "admin-password": { type: "string" } },
      });
      if (positionals[0] !== "rotate") exitWith(`unknown keys command "${positionals[0] ?? ""}"\n\n${usage}`);
      const result = (await adminRequest(serverOf(values), "POST", "/admin/keys/rotate")) as {
        kid: string;
        previousKid: string | null;
      };
      process.stdout.write(
        `Ferry's signing key is now ${result.kid}${result.previousKid ? ` (previous: ${result.previousKid}, still published)` : ""}\n`,
      );
      return;
    }
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(`${usage}\n`);
      return;
    default:
      exitWith(`unknown command "${command}"\n\n${usage}`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`ferry: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
