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

/**
 * TCP connections process `pid` holds to `port` (e.g. the Kafka broker's): its socket
 * inodes (/proc/<pid>/fd) matched against the connection table (/proc/net/tcp, tcp6).
 */
export function tcpConnectionsTo(pid: number, port: number): number {
  const inodes = new Set<string>();
  for (const fd of Deno.readDirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(Deno.readLinkSync(`/proc/${pid}/fd/${fd.name}`));
      if (m) inodes.add(m[1]);
    } catch { /* closed meanwhile */ }
  }
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  let n = 0;
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = Deno.readTextFileSync(table);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      // f[2] is the remote address:port, f[3] the state (01 = established), f[9] the inode.
      if (f.length > 9 && f[2].endsWith(`:${hexPort}`) && f[3] === "01" && inodes.has(f[9])) n++;
    }
  }
  return n;
}
