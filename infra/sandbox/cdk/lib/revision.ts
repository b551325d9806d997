// The three revisions of Vela's infrastructure that the migration walks through (cdk -c revision=rN).
export type Revision = "r0" | "r1" | "r2";

export const REVISIONS: readonly Revision[] = ["r0", "r1", "r2"];

export function parseRevision(raw: unknown): Revision {
  const value = String(raw ?? "r0");
  if (!(REVISIONS as readonly string[]).includes(value)) {
    throw new Error(`unknown revision ${value}: expected one of ${REVISIONS.join(", ")}`);
  }
  return value as Revision;
}

/** Aurora is declared in r0 and r1; r2 removes it. */
export const hasAurora = (revision: Revision): boolean => revision !== "r2";
/** DSQL arrives in r1. */
export const hasDsql = (revision: Revision): boolean => revision !== "r0";
