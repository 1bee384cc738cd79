/**
 * Redis answers stream entries and XINFO replies as flat [field, value, field, value, ...] lists (RESP2);
 * this turns one into a record. A trailing field without a value is dropped.
 */
export function pairsToRecord<T>(items: readonly T[]): Record<string, T> {
  const record: Record<string, T> = {};
  for (let index = 0; index + 1 < items.length; index += 2) {
    record[String(items[index])] = items[index + 1] as T;
  }
  return record;
}
