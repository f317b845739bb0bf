/** Tools as JSON Schemas, and tool_choice (auto, none, required, or one tool forced). */
import type { Settings, ToolDef } from "../conversation.js";

const EXAMPLE: ToolDef = {
  name: "get_weather",
  description: "The current weather in a city",
  parameters: JSON.stringify({ type: "object", properties: { city: { type: "string" } }, required: ["city"] }, null, 2),
};

export function ToolsForm({ settings, onChange }: { settings: Settings; onChange: (s: Settings) => void }) {
  const tools = settings.tools;
  const setTool = (i: number, patch: Partial<ToolDef>) => {
    const next = tools.map((t, j) => (j === i ? { ...t, ...patch } : t));
    const renamed = patch.name !== undefined && settings.toolChoice === `function:${tools[i]!.name}`;
    onChange({ ...settings, tools: next, toolChoice: renamed ? `function:${patch.name}` : settings.toolChoice });
  };
  const remove = (i: number) => {
    const gone = tools[i]!;
    onChange({ ...settings, tools: tools.filter((_, j) => j !== i), toolChoice: settings.toolChoice === `function:${gone.name}` ? "auto" : settings.toolChoice });
  };
  const add = () => {
    const taken = new Set(tools.map((t) => t.name));
    let name = EXAMPLE.name;
    for (let n = 2; taken.has(name); n++) name = `${EXAMPLE.name}_${n}`;
    onChange({ ...settings, tools: [...tools, { ...EXAMPLE, name }] });
  };
  return (
    <div class="tools">
      {tools.map((t, i) => (
        <fieldset key={i} class="tool-def">
          <legend>Tool {i + 1}</legend>
          <label for={`tool-name-${i}`}>Name</label>
          <input id={`tool-name-${i}`} class="tool-name-input" value={t.name} onInput={(e) => setTool(i, { name: (e.currentTarget as HTMLInputElement).value })} />
          <label for={`tool-desc-${i}`}>Description</label>
          <input id={`tool-desc-${i}`} value={t.description} onInput={(e) => setTool(i, { description: (e.currentTarget as HTMLInputElement).value })} />
          <label for={`tool-params-${i}`}>Parameters (JSON Schema)</label>
          <textarea
            id={`tool-params-${i}`}
            class="code tool-params-input"
            rows={6}
            spellcheck={false}
            value={t.parameters}
            onInput={(e) => setTool(i, { parameters: (e.currentTarget as HTMLTextAreaElement).value })}
          />
          <button type="button" onClick={() => remove(i)}>
            Remove tool {t.name}
          </button>
        </fieldset>
      ))}
      <button type="button" id="add-tool" onClick={add}>
        Add a tool
      </button>
      <label for="tool-choice">Tool choice</label>
      <select id="tool-choice" value={settings.toolChoice} disabled={tools.length === 0} onChange={(e) => onChange({ ...settings, toolChoice: (e.currentTarget as HTMLSelectElement).value })}>
        <option value="auto">auto</option>
        <option value="none">none</option>
        <option value="required">required</option>
        {tools.map((t) => (
          <option key={t.name} value={`function:${t.name}`}>
            force {t.name}
          </option>
        ))}
      </select>
    </div>
  );
}
