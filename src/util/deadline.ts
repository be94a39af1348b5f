/**
 * Waits for `p` to settle, or for `ms` to pass, whichever comes first: true if `p` settled (fulfilled or
 * rejected) in time. The timer is cleared either way, so nothing is left pending.
 */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((r) => (timer = setTimeout(() => r(false), Math.max(0, ms))));
  try {
    return await Promise.race([p.then(() => true, () => true), late]);
  } finally {
    clearTimeout(timer);
  }
}
