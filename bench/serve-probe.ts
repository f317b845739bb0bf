/**
 * The /health prober of `bench serve`, in its own process: the server under test runs its
 * model steps on the benchmark's main thread, so probes timed from there could only start
 * between steps and would never see a stall. Forked with IPC and `<url> <intervalMs>`: it
 * sends GET <url> every intervalMs without waiting for earlier probes (open loop: a probe is
 * due whether or not the server answered the last one), and on "stop" waits for the probes
 * still out and replies with every sample (`sent` in epoch ms, latency in ms).
 */
import { Agent, get } from "node:http";

export interface ProbeSample {
  /** performance.timeOrigin + performance.now() when the probe was sent. */
  sent: number;
  ms: number;
  ok: boolean;
}

const [url, every] = process.argv.slice(2);
const intervalMs = Number(every);
const agent = new Agent({ keepAlive: true });
const samples: ProbeSample[] = [];
let outstanding = 0;
const now = () => performance.timeOrigin + performance.now();

function probe(): void {
  const sent = now();
  outstanding++;
  const done = (ok: boolean) => {
    samples.push({ sent, ms: now() - sent, ok });
    outstanding--;
  };
  get(url!, { agent }, (res) => {
    res.resume();
    res.on("end", () => done(res.statusCode === 200));
    res.on("error", () => done(false));
  }).on("error", () => done(false));
}

const timer = setInterval(probe, intervalMs);
probe();
process.send?.("ready");
process.on("message", (m) => {
  if (m !== "stop") return;
  clearInterval(timer);
  const deadline = Date.now() + 600_000;
  const finish = () => {
    if (outstanding > 0 && Date.now() < deadline) return void setTimeout(finish, 5);
    process.send!({ samples }, () => process.exit(0));
  };
  finish();
});
process.on("disconnect", () => process.exit(0));
