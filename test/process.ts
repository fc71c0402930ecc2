import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export interface FerryProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
  generatedPassword: string | undefined;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/** Starts `ferry serve` as a child process and waits until it prints that it is running. */
export async function startFerryProcess(env: Record<string, string>): Promise<FerryProcess> {
  // FERRY_NODE_ARGS: extra node flags for the server (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
  const nodeArgs = process.env.FERRY_NODE_ARGS?.split(" ").filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...nodeArgs, path.join(repoRoot, "bin/ferry.js"), "serve"], {
    cwd: repoRoot,
    env: { ...process.env, PORT: "0", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk) => {
    output += String(chunk);
  });
  child.stderr?.on("data", (chunk) => {
    output += String(chunk);
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ferry did not start:\n${output}`)), 60_000);
    const check = () => {
      const match = /API reference: +(http:\/\/\S+)\/docs/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout?.on("data", check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`ferry exited with ${code} before starting:\n${output}`));
    });
  });
  return {
    child,
    url,
    output: () => output,
    generatedPassword: /Platform admin:\s+user "admin", password (\S+)/.exec(output)?.[1],
    async stop() {
      child.kill("SIGTERM");
      return exited;
    },
  };
}

/** Runs `ferry <args>` to completion. */
export function runFerry(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(repoRoot, "bin/ferry.js"), ...args], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => {
      stdout += String(c);
    });
    child.stderr.on("data", (c) => {
      stderr += String(c);
    });
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}
