/**
 * Runs `task` over `items` with at most `limit` in flight. A task that throws
 * is reported through `onError` and never stops the others: one dead
 * connection must not cost the rest of a room its message.
 */
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<void>,
  onError: (error: unknown, item: T) => void,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      try {
        await task(item);
      } catch (error) {
        onError(error, item);
      }
    }
  };
  const workers = Math.max(1, Math.min(limit, items.length));
  await Promise.all(Array.from({ length: workers }, worker));
}
