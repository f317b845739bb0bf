/**
 * Cheap checks of config.json against the tensor headers, run before the full tensor
 * schema is built: the schema lists layers × experts entries, so a config whose counts
 * the checkpoint cannot hold is refused here, naming the key and the tensor that
 * disagree, instead of after enumerating (or allocating for) the impossible model.
 */
import { Checkpoint, CheckpointFormatError } from "../formats/safetensors.js";
import type { ModelConfig } from "./config.js";

export function checkConfigFitsCheckpoint(ckpt: Checkpoint, cfg: ModelConfig): void {
  const configFile = `${ckpt.dir}/config.json`;
  // The file that disagrees with the config: the tensor's shard when it exists, else the directory.
  const disagree = (key: string, tensor: string, why: string) =>
    new CheckpointFormatError(`"${key}" in ${configFile} does not fit the checkpoint: ${why}`, ckpt.has(tensor) ? ckpt.info(tensor).file : ckpt.dir, tensor);

  const embed = "embed.weight";
  if (ckpt.has(embed)) {
    const [rows, cols] = ckpt.info(embed).shape;
    if (rows !== cfg.vocabSize) throw disagree("vocab_size", embed, `config says ${cfg.vocabSize}, the tensor has ${rows} rows`);
    if (cols !== cfg.dim) throw disagree("hidden_size", embed, `config says ${cfg.dim}, the tensor has ${cols} columns`);
  }
  const lastLayer = `layers.${cfg.numLayers - 1}.attn_norm.weight`;
  if (!ckpt.has(lastLayer)) throw disagree("num_hidden_layers", lastLayer, `config says ${cfg.numLayers} layers, the checkpoint has no tensor for the last one`);
  const lastExpert = `layers.0.ffn.experts.${cfg.numRoutedExperts - 1}.w1.weight`;
  if (!ckpt.has(lastExpert)) throw disagree("n_routed_experts", lastExpert, `config says ${cfg.numRoutedExperts} experts, the checkpoint has no tensor for the last one`);
  // Each routed expert is at least 3 tensors: a schema far larger than the checkpoint is a wrong config.
  const expertTensors = (cfg.numLayers + cfg.numMtpLayers) * cfg.numRoutedExperts * 3;
  const held = ckpt.names().length;
  if (expertTensors > held) {
    throw disagree("n_routed_experts", lastExpert, `${cfg.numLayers + cfg.numMtpLayers} blocks × ${cfg.numRoutedExperts} experts need at least ${expertTensors} tensors, the checkpoint holds ${held}`);
  }
}
