#!/usr/bin/env node
// Runs Ferry: the bundle `npm run build` made (dist/ferry.mjs; `npm start` builds it first) when
// it is newer than every source file, else the TypeScript sources directly through tsx — so a
// clone, a test run or a changed source never runs a stale bundle.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const bundle = path.join(root, "dist", "ferry.mjs");

function newestSource(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(file) : fs.statSync(file).mtimeMs);
  }
  return newest;
}

function bundleIsCurrent() {
  try {
    return fs.statSync(bundle).mtimeMs >= newestSource(path.join(root, "src"));
  } catch {
    return false;
  }
}

if (process.env.FERRY_FROM_SOURCE !== "1" && bundleIsCurrent()) {
  process.setSourceMapsEnabled(true);
  await import(bundle);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../src/cli.ts");
}
