/**
 * The names the served checkpoint answers to (spec §A.1 GET /models, §A.2
 * `model`): DeepSeek's own name plus configured aliases. Anything else is
 * DeepSeek's "Model Not Exist".
 */
import { modelNotExist } from "./errors.js";

export const DEFAULT_MODEL_NAME = "deepseek-v4-flash";

export interface ModelObject {
  id: string;
  object: "model";
  owned_by: string;
}

export class ModelNames {
  readonly names: readonly string[];

  constructor(primary: string = DEFAULT_MODEL_NAME, aliases: readonly string[] = []) {
    this.names = [...new Set([primary, ...aliases])];
  }

  get primary(): string {
    return this.names[0]!;
  }

  has(name: string): boolean {
    return this.names.includes(name);
  }

  /** The name to answer with; throws the 400 for an unknown one. */
  resolve(name: string): string {
    if (!this.has(name)) throw modelNotExist();
    return name;
  }

  /**
   * Anthropic-endpoint names (spec §A.11): claude-opus* → a served
   * deepseek-v4-pro alias if there is one; every other name → the primary.
   */
  resolveAnthropic(name: string): string {
    if (this.has(name)) return name;
    if (name.startsWith("claude-opus") && this.has("deepseek-v4-pro")) return "deepseek-v4-pro";
    return this.primary;
  }

  list(): { object: "list"; data: ModelObject[] } {
    return { object: "list", data: this.names.map((id) => this.object(id)) };
  }

  object(id: string): ModelObject {
    return { id, object: "model", owned_by: "deepseek" };
  }
}
