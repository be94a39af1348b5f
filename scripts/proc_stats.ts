/** What a process has used so far, read from /proc (Linux), for benchmarks that say where the time goes. */

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** CPU seconds (user + system) process `pid` has used ("self" for this one). */
export function cpuSeconds(pid: number | "self"): number {
  // Fields after the ")" of /proc/<pid>/stat: utime and stime are the 12th and 13th.
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** Resident memory of process `pid`, in bytes. */
export function rssBytes(pid: number | "self"): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}
