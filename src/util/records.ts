/** A plain object (not null, not an array): what JSON and YAML mappings parse to. */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
