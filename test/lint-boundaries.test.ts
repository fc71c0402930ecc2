import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * The layers' boundaries are checked by `npm run lint` (biome.json's overrides: faces import no
 * other face; modules import no face, no sandbox provider and not the composition root; providers
 * import no module; no import cycles). Each case lints a small tree of fixture files with the
 * project's own biome.json, copied into a temporary folder, and expects the rule to fire — or,
 * for the allowed imports, nothing.
 */

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, "..");
const biome = path.join(root, "node_modules", ".bin", "biome");
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "ferry-lint-"));
  const config = JSON.parse(await readFile(path.join(root, "biome.json"), "utf8"));
  // The copy is not a git checkout: the ignore file does not apply.
  config.vcs = { enabled: false };
  config.files = { includes: ["**"] };
  await writeFile(path.join(dir, "biome.json"), JSON.stringify(config));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function lint(files: Record<string, string>): Promise<{ ok: boolean; output: string }> {
  const tree = await mkdtemp(path.join(dir, "case-"));
  await writeFile(path.join(tree, "biome.json"), await readFile(path.join(dir, "biome.json")));
  for (const [name, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(tree, name)), { recursive: true });
    await writeFile(path.join(tree, name), text);
  }
  try {
    const { stdout, stderr } = await run(biome, ["lint", "--max-diagnostics=50", "src"], { cwd: tree });
    return { ok: true, output: stdout + stderr };
  } catch (error) {
    const { stdout = "", stderr = "" } = error as { stdout?: string; stderr?: string };
    return { ok: false, output: stdout + stderr };
  }
}

const uses = (specifier: string) => `import { thing } from "${specifier}";\nexport const used = thing;\n`;

describe("npm run lint keeps the layers apart", () => {
  it.each([
    [
      "a face importing another face",
      "src/faces/payin/route.ts",
      "../wallet/access.ts",
      "A face imports no other face",
    ],
    ["a face writing SQL", "src/faces/wallet/route.ts", "kysely", "A face holds no SQL"],
    [
      "a face opening a transaction",
      "src/faces/wallet/route.ts",
      "../../db/transaction.ts",
      "A face holds no SQL",
    ],
    [
      "a module importing a face",
      "src/modules/users/service.ts",
      "../../faces/wallet/money.ts",
      "A module imports no face",
    ],
    [
      "a module importing a sandbox provider",
      "src/modules/kyc/service.ts",
      "../../providers/kyc/sandbox.ts",
      "A module imports no face",
    ],
    [
      "a module importing the composition root",
      "src/modules/kyc/service.ts",
      "../../services.ts",
      "A module imports no face",
    ],
    [
      "a provider importing a module",
      "src/providers/bank/sandbox.ts",
      "../../modules/ledger/service.ts",
      "A provider imports no module",
    ],
  ])("%s fails", async (_name, file, specifier, message) => {
    const { ok, output } = await lint({ [file]: uses(specifier) });
    expect(ok, output).toBe(false);
    expect(output).toContain("lint/style/noRestrictedImports");
    expect(output).toContain(message);
  });

  it("a runtime import cycle fails", async () => {
    const { ok, output } = await lint({
      "src/modules/a/service.ts": uses("../b/service.ts"),
      "src/modules/b/service.ts": uses("../a/service.ts"),
    });
    expect(ok, output).toBe(false);
    expect(output).toContain("lint/suspicious/noImportCycles");
  });

  it("the allowed directions pass: face → module, module → module and provider interface, provider → lib", async () => {
    const { ok, output } = await lint({
      "src/faces/wallet/route.ts": uses("../../modules/users/service.ts"),
      "src/faces/wallet/other.ts": uses("./route.ts"),
      "src/modules/users/service.ts": uses("../ledger/service.ts"),
      "src/modules/ledger/service.ts": uses("../../providers/bank/interface.ts"),
      "src/providers/bank/interface.ts": uses("../../lib/money.ts"),
      "src/lib/money.ts": "export const thing = 1;\n",
    });
    expect(ok, output).toBe(true);
  });
});
