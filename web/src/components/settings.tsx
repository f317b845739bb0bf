/** The request's options: system prompt, thinking and effort, sampling, limits, stop strings. */
import { EFFORTS, type Effort, type Settings } from "../conversation.js";

function numberOrNull(value: string): number | null {
  if (value.trim() === "") return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

export function SettingsForm({ settings, models, onChange }: { settings: Settings; models: string[]; onChange: (s: Settings) => void }) {
  const set = (patch: Partial<Settings>) => onChange({ ...settings, ...patch });
  const modelList = models.includes(settings.model) || !settings.model ? models : [settings.model, ...models];
  return (
    <div class="settings">
      <label for="model">Model</label>
      <select id="model" value={settings.model} onChange={(e) => set({ model: (e.currentTarget as HTMLSelectElement).value })}>
        {modelList.map((m) => (
          <option key={m} value={m}>
            {m}
          </option>
        ))}
      </select>
      <label for="system">System prompt</label>
      <textarea id="system" rows={4} value={settings.system} onInput={(e) => set({ system: (e.currentTarget as HTMLTextAreaElement).value })} />
      <div class="row">
        <input id="thinking" type="checkbox" checked={settings.thinking} onChange={(e) => set({ thinking: (e.currentTarget as HTMLInputElement).checked })} />
        <label for="thinking">Thinking</label>
      </div>
      <label for="effort">Reasoning effort</label>
      <select id="effort" value={settings.effort} disabled={!settings.thinking} onChange={(e) => set({ effort: (e.currentTarget as HTMLSelectElement).value as Effort })}>
        {EFFORTS.map((x) => (
          <option key={x} value={x}>
            {x === "default" ? "server default" : x}
          </option>
        ))}
      </select>
      <label for="temperature">Temperature</label>
      <input
        id="temperature"
        type="number"
        min={0}
        max={2}
        step={0.1}
        placeholder="default"
        value={settings.temperature ?? ""}
        onInput={(e) => set({ temperature: numberOrNull((e.currentTarget as HTMLInputElement).value) })}
      />
      <label for="max-tokens">Max tokens</label>
      <input
        id="max-tokens"
        type="number"
        min={1}
        step={1}
        placeholder="default"
        value={settings.maxTokens ?? ""}
        onInput={(e) => set({ maxTokens: numberOrNull((e.currentTarget as HTMLInputElement).value) })}
      />
      <label for="stop">Stop strings (one per line)</label>
      <textarea id="stop" rows={2} value={settings.stop} onInput={(e) => set({ stop: (e.currentTarget as HTMLTextAreaElement).value })} />
    </div>
  );
}
