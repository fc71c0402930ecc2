import { z } from "zod";

/** `page` from 0, `size` 1–100 (default 20): every list endpoint's query. */
export const pageQuery = z.object({
  page: z.coerce.number().int().min(0).max(1_000_000).default(0).describe("Page number, from 0"),
  size: z.coerce.number().int().min(1).max(100).default(20).describe("Records per page, at most 100"),
});

export type PageQuery = z.infer<typeof pageQuery>;

export function pageOf<T extends z.ZodType>(record: T) {
  return z.object({
    records: z.array(record),
    pageNumber: z.number().int(),
    pageSize: z.number().int(),
    totalRecords: z.number().int(),
    totalPages: z.number().int(),
  });
}

export function toPage<T>(records: T[], total: number, query: PageQuery) {
  return {
    records,
    pageNumber: query.page,
    pageSize: query.size,
    totalRecords: total,
    totalPages: Math.ceil(total / query.size),
  };
}

export function offsetOf(query: PageQuery) {
  return { offset: query.page * query.size, limit: query.size };
}
