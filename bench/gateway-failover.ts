/**
 * failover_success: three `dsv4 serve` replicas (own processes) behind a gateway; streams run on
 * them, then the replica serving the most of them is killed (SIGKILL, as a crash). Every request
 * sent after that, including those whose prefix the dead replica held, must succeed on another
 * replica (failover_success = succeeded / sent, goal 1), and every stream that was running on the
 * dead replica must end with an error event rather than a cut connection
 * (failover_streams_clean = such streams / streams interrupted, goal 1).
 */
import { ensureDefaultModel } from "../src/cli/default-model.js";
import { startGateway } from "../src/gateway/index.js";
import { startReplicaProcess } from "./replica-process.js";

export interface FailoverRun {
  failover_success: number;
  failover_requests: number;
  failover_streams_interrupted: number;
  failover_streams_clean: number;
}

const SYSTEM = "You are a careful assistant for the failover benchmark. ".repeat(40);

interface Stream {
  /** Whether the stream ended with an error event (false also when its connection was cut). */
  done: Promise<boolean>;
  started: Promise<void>;
}

/** A streamed chat completion read to its end. */
function stream(url: string, i: number): Stream {
  let markStarted!: () => void;
  const started = new Promise<void>((resolve) => (markStarted = resolve));
  const done = (async () => {
    const body = { model: "deepseek-v4-flash", stream: true, max_tokens: 300, thinking: { type: "disabled" }, messages: [{ role: "system", content: SYSTEM }, { role: "user", content: `Stream ${i}` }] };
    const res = await fetch(`${url}/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    let text = "";
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        text += Buffer.from(chunk).toString();
        if (/"content":"[^"]/.test(text)) markStarted(); // generated text, not the role chunk the gateway sends itself
      }
    } catch {
      return false; // the connection was cut
    } finally {
      markStarted();
    }
    return text.split("\n").some((line) => line.startsWith("data: {") && JSON.parse(line.slice(6)).error !== undefined);
  })();
  return { done, started };
}

export async function failoverRun(requests = 24): Promise<FailoverRun> {
  const { dir } = await ensureDefaultModel();
  const reps = await Promise.all([0, 1, 2].map(() => startReplicaProcess()));
  const gateway = await startGateway({ upstreams: reps.map((r) => r.url), modelDir: dir, port: 0, healthIntervalMs: 200 });
  try {
    const streams = Array.from({ length: 6 }, (_, i) => stream(gateway.url, i));
    await Promise.all(streams.map((s) => s.started));
    const busiest = [...gateway.engine.replicas].sort((a, b) => b.inFlight - a.inFlight)[0]!;
    const interrupted = busiest.inFlight;
    await reps.find((r) => r.url === busiest.url)!.crash();
    // The same system prompt as the streams: the gateway's affinity points at the dead replica.
    const after = await Promise.all(Array.from({ length: requests }, async (_, i) => {
      const body = { model: "deepseek-v4-flash", stream: i % 2 === 1, max_tokens: 3, thinking: { type: "disabled" }, messages: [{ role: "system", content: SYSTEM }, { role: "user", content: `After the crash ${i}` }] };
      const res = await fetch(`${gateway.url}/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      const text = await res.text();
      return res.ok && !/"error"/.test(text);
    }));
    const ends = await Promise.all(streams.map((s) => s.done));
    const clean = ends.filter(Boolean).length;
    return {
      failover_success: after.filter(Boolean).length / requests,
      failover_requests: requests,
      failover_streams_interrupted: interrupted,
      failover_streams_clean: interrupted === 0 ? 1 : Math.min(1, clean / interrupted),
    };
  } finally {
    await gateway.close();
    for (const r of reps) await r.close();
  }
}
