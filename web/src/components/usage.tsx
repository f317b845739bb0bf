/** The key's spend from GET /v1/usage (the gateway's ledger); shown only where that route answers. */
import type { UsageReport } from "../api.js";

export function UsageView({ report }: { report: UsageReport }) {
  return (
    <div class="usage">
      <p>
        Key <code>{report.key.name ?? report.key.id}</code>: spent ${report.spent_usd.toFixed(6)}
        {report.budget_usd === null ? " (no budget)" : ` of $${report.budget_usd.toFixed(2)}`}, reserved ${report.reserved_usd.toFixed(6)}, {report.requests} requests.
      </p>
      {report.recent.length > 0 ? (
        <div class="table-wrap">
          <table>
            <caption>Recent requests</caption>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Tokens in (cached) / out</th>
                <th scope="col">Cost</th>
                <th scope="col">Latency</th>
              </tr>
            </thead>
            <tbody>
              {report.recent.map((r) => (
                <tr key={r.request_id}>
                  <td>{new Date(r.created * 1000).toLocaleTimeString()}</td>
                  <td>
                    {r.prompt_tokens} ({r.prompt_cache_hit_tokens}) / {r.completion_tokens}
                  </td>
                  <td>${r.cost_usd.toFixed(6)}</td>
                  <td>{Math.round(r.latency_ms)} ms</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </div>
  );
}
