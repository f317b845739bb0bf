import { existsSync, readFileSync } from "node:fs";

/**
 * The sum of one /proc/self/smaps field (in bytes) over this process's mappings of `file`
 * (Linux), or null where smaps cannot be read. Fields: "FilePmdMapped" (mapped with 2 MiB
 * entries), "Locked" (mlocked), "Rss".
 */
export function smapsBytesOf(file: string, field: string): number | null {
  if (!existsSync("/proc/self/smaps")) return null;
  let total = 0;
  let inFile = false;
  const pattern = new RegExp(`^${field}:\\s+(\\d+) kB`);
  for (const line of readFileSync("/proc/self/smaps", "utf8").split("\n")) {
    const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header) inFile = header[1] === file;
    const m = inFile ? pattern.exec(line) : null;
    if (m) total += Number(m[1]) * 1024;
  }
  return total;
}
