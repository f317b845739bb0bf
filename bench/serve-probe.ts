/**
 * The /health prober of `bench serve`, in its own process: the server under test runs its
 * model steps on the benchmark's main thread, so probes timed from there could only start
 * between steps and would never see a stall. Forked with IPC and `<url> <intervalMs>`: one
 * probe at a time on one keep-alive connection, the next due intervalMs after the previous
 * one was sent (at once when the answer took longer). Open-loop probing (a new request every
 * interval whatever is outstanding) was tried and measured the prober instead: during a
 * multi-second step it opened connections by the hundred, overflowed the listen backlog and
 * timed TCP's SYN retries. The skipped intervals are accounted for by the caller (see
 * `withSkippedProbes` in serve.ts). On "stop" it replies with every sample: `sent` in epoch ms, latency in ms.
 */
import { Agent, get } from "node:http";

export interface ProbeSample {
  /** performance.timeOrigin + performance.now() when the probe was sent. */
  sent: number;
  ms: number;
  ok: boolean;
}

const now = () => performance.timeOrigin + performance.now();

function probe(url: string, agent: Agent): Promise<ProbeSample> {
  const sent = now();
  return new Promise((resolve) => {
    const done = (ok: boolean) => resolve({ sent, ms: now() - sent, ok });
    get(url, { agent }, (res) => {
      res.resume();
      res.on("end", () => done(res.statusCode === 200));
      res.on("error", () => done(false));
    }).on("error", () => done(false));
  });
}

async function main(url: string, intervalMs: number): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const samples: ProbeSample[] = [];
  let stopping = false;
  process.on("message", (m) => {
    if (m === "stop") stopping = true;
  });
  process.on("disconnect", () => process.exit(0));
  process.send!("ready");
  while (!stopping) {
    const s = await probe(url, agent);
    samples.push(s);
    const wait = s.sent + intervalMs - now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  agent.destroy();
  process.send!({ samples }, () => process.exit(0));
}

if (process.send) {
  const [url, every] = process.argv.slice(2);
  await main(url!, Number(every));
}
