#!/usr/bin/env node
// Bundles Ferry's TypeScript sources into dist/ferry.mjs (esbuild, ~0.1 s): `npm start` runs it
// (`prestart`), so the server starts without compiling TypeScript at run time and idles in less
// memory. Dependencies stay in node_modules (not bundled); the migrations and the shipped
// sanctions list are copied next to the bundle, where the code looks for them.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const dist = path.join(root, "dist");
fs.rmSync(dist, { recursive: true, force: true });
await build({
  entryPoints: [path.join(root, "src/cli.ts")],
  outfile: path.join(dist, "ferry.mjs"),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  packages: "external",
  sourcemap: "linked",
  logLevel: "warning",
});
fs.cpSync(path.join(root, "src/db/migrations"), path.join(dist, "migrations"), { recursive: true });
fs.copyFileSync(path.join(root, "src/modules/monitoring/sanctions.csv"), path.join(dist, "sanctions.csv"));
