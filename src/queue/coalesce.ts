/**
 * queue/coalesce — lookups asked in the same event-loop turn answered by one
 * request: the keys asked before the turn's check phase (`setImmediate`) go
 * to `fetch` together, and every caller gets the one result (or the one
 * failure). With many SMTP sessions, the sockets one poll finds readable ask
 * in the same turn, so N questions cost one queue-thread round trip (SQLite)
 * or one statement (PostgreSQL) instead of N.
 *
 * Used for read-only questions whose answer for a set of keys holds for
 * each key alone (the suppression list at RCPT; on PostgreSQL, the message
 * and body of each delivery). Holds no cache: every turn
 * asks again. Does no I/O of its own.
 */
export function coalesced<K, R>(fetch: (keys: readonly K[]) => Promise<R>): (key: K) => Promise<R> {
  let keys: K[] = [];
  let answer: Promise<R> | undefined;
  return (key: K): Promise<R> => {
    keys.push(key);
    answer ??= new Promise<R>((resolve, reject) => {
      setImmediate(() => {
        const asked = keys;
        keys = [];
        answer = undefined;
        fetch(asked).then(resolve, reject);
      });
    });
    return answer;
  };
}
