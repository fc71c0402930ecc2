import { parseArgs } from "node:util";
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
