import type { Db } from "../../db/database.ts";
import { DomainError } from "../../lib/errors.ts";
import { newId, UUID } from "../../lib/ids.ts";

/** Transfer templates: a past transfer's accounts saved under a name, to send again. */
export interface Template {
  id: string;
  userId: string;
  name: string;
  description: string | null;
  toolType: "COIN" | "SMART_CARD";
  srcValue: string;
  destValue: string;
  currency: string;
  /** Minor units of `currency`. */
  amount: bigint | null;
  sourceRequest: string;
  createdAt: Date;
}

type TemplateRow = {
  id: string;
  user_id: string;
  name: string;
  description: string | null;
  tool_type: string;
  src_value: string;
  dest_value: string;
  currency: string;
  amount: string | null;
  source_request: string;
  created_at: Date;
};

const toTemplate = (r: TemplateRow): Template => ({
  id: r.id,
  userId: r.user_id,
  name: r.name,
  description: r.description,
  toolType: r.tool_type as Template["toolType"],
  srcValue: r.src_value,
  destValue: r.dest_value,
  currency: r.currency,
  amount: r.amount === null ? null : BigInt(r.amount),
  sourceRequest: r.source_request,
  createdAt: new Date(r.created_at),
});

export class Templates {
  constructor(private readonly db: Db) {}

  /** Saves a template of the user (`amount`: the transfer's, as a decimal string in major units). */
  async save(
    owner: { clientId: string; userId: string },
    input: {
      name: string;
      description?: string | undefined;
      srcValue: string;
      destValue: string;
      currency: string;
      amount: bigint | null;
      sourceRequest: string;
    },
  ): Promise<Template> {
    const row = await this.db
      .insertInto("transfer_templates")
      .values({
        client_id: owner.clientId,
        id: newId(),
        user_id: owner.userId,
        name: input.name,
        description: input.description ?? null,
        tool_type: "COIN",
        src_value: input.srcValue,
        dest_value: input.destValue,
        currency: input.currency,
        amount: input.amount === null ? null : input.amount.toString(),
        source_request: input.sourceRequest,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toTemplate(row);
  }

  /** One of the user's templates (404 for anyone else's). */
  async get(owner: { clientId: string; userId: string }, id: string): Promise<Template> {
    const row = UUID.test(id)
      ? await this.db
          .selectFrom("transfer_templates")
          .selectAll()
          .where("client_id", "=", owner.clientId)
          .where("user_id", "=", owner.userId)
          .where("id", "=", id)
          .executeTakeFirst()
      : undefined;
    if (!row) throw new DomainError("NOT_FOUND", "TEMPLATE_NOT_FOUND", `no template ${id}`);
    return toTemplate(row);
  }

  async list(
    owner: { clientId: string; userId: string },
    toolType: string | undefined,
    page: { offset: number; limit: number },
  ) {
    let query = this.db
      .selectFrom("transfer_templates")
      .where("client_id", "=", owner.clientId)
      .where("user_id", "=", owner.userId);
    if (toolType !== undefined) query = query.where("tool_type", "=", toolType);
    const [rows, count] = await Promise.all([
      query.selectAll().orderBy("created_at").orderBy("id").offset(page.offset).limit(page.limit).execute(),
      query.select((eb) => eb.fn.countAll<string>().as("n")).executeTakeFirstOrThrow(),
    ]);
    return { templates: rows.map(toTemplate), total: Number(count.n) };
  }
}
